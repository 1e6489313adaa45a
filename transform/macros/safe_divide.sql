{#- numerator / denominator as Float64, NULL when the denominator is 0 or NULL. -#}
{% macro safe_divide(numerator, denominator) -%}
    if(({{ denominator }}) = 0, NULL, toFloat64({{ numerator }}) / ({{ denominator }}))
{%- endmacro %}
