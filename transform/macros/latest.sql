{#- The value of `column` at the newest `version`: argMax, ClickHouse's dedupe of an entity's
    history to its latest state (no window function, one pass over the group). -#}
{% macro latest(column, version='scraped_at') -%}
    argMax({{ column }}, {{ version }})
{%- endmacro %}

{#- The value of `column` at the newest `version` no later than `cutoff` (NULL when none). -#}
{% macro latest_before(column, version, cutoff) -%}
    if(countIf({{ version }} <= {{ cutoff }}) = 0, NULL, argMaxIf({{ column }}, {{ version }}, {{ version }} <= {{ cutoff }}))
{%- endmacro %}
