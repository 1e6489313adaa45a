{#- How far an estimate is from the observed value on a log scale: ln(estimate / observed)
    (0 = exact, +ln 2 = twice the observed value, −ln 2 = half of it), NULL when either side is
    NULL or not positive. abs_log_ratio is its size, symmetric in over- and under-estimation.
    (The plain relative error is growth_pct(estimate, observed).) -#}
{% macro log_ratio(estimate, observed) -%}
    if(coalesce({{ estimate }}, 0) <= 0 or coalesce({{ observed }}, 0) <= 0, NULL,
       log(toFloat64({{ estimate }}) / toFloat64({{ observed }})))
{%- endmacro %}

{% macro abs_log_ratio(estimate, observed) -%}
    abs({{ log_ratio(estimate, observed) }})
{%- endmacro %}
