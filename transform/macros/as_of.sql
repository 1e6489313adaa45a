{#- The time a model's metrics are "as of": the newest observation in `relation` (a scalar
    subquery). Windows such as "the last 30 days" count back from the data, never from the
    clock, so a rebuild of the same data gives the same numbers. -#}
{% macro as_of(relation, column='scraped_at') -%}
    (select max({{ column }}) from {{ relation }})
{%- endmacro %}
