-- mart_source_freshness has one row for every source table the project declares (read from the
-- graph), so a new source cannot go unmonitored, and its thresholds are the declared ones.
{% set declared = [] %}
{% if execute %}
    {% for node in graph.sources.values() %}
        {% do declared.append(node) %}
    {% endfor %}
{% endif %}
with declared as (
    {%- for node in declared %}
    {%- set d = declared_freshness(node.source_name, node.name) %}
    select '{{ node.source_name }}' as source_name, '{{ node.name }}' as table_name,
           toNullable(toUInt64({{ d['warn_after'] if d['warn_after'] is not none else 'null' }})) as warn_after_minutes
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
    {%- if not declared %}
    select '' as source_name, '' as table_name, toNullable(toUInt64(null)) as warn_after_minutes where 0
    {%- endif %}
)
select d.source_name, d.table_name
from declared as d
left join {{ ref('mart_source_freshness') }} as m
    on toString(m.source_name) = d.source_name and m.table_name = d.table_name
where m.table_name = '' or m.table_name is null or m.warn_after_minutes is distinct from d.warn_after_minutes
