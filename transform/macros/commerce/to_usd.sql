{#- An amount in `currency` converted to USD with the fixed rates of var `usd_per_unit` (a map
    currency -> USD per unit, in dbt_project.yml; meant for comparing brands and for ROI against
    USD cost estimates, not for accounting). An unknown currency gives NULL. -#}
{% macro to_usd(amount, currency) -%}
    {%- set rates = var('usd_per_unit') -%}
    toFloat64({{ amount }}) * transform(toString({{ currency }}), [{% for c in rates %}'{{ c }}'{% if not loop.last %}, {% endif %}{% endfor %}], [{% for c in rates %}toNullable(toFloat64({{ rates[c] }})){% if not loop.last %}, {% endif %}{% endfor %}], NULL)
{%- endmacro %}
