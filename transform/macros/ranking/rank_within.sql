{#- Rank of `metric` within `partition_by` (a column list or a string), 1 = highest, as Int64;
    rows whose metric is NULL get NULL and do not take a rank from the others. -#}
{% macro rank_within(metric, partition_by) -%}
    {%- set partition = partition_by if partition_by is string else partition_by | join(', ') -%}
    if({{ metric }} is null, null, toInt64(rank() over (partition by {{ partition }}, isNull({{ metric }}) order by {{ metric }} desc)))
{%- endmacro %}
