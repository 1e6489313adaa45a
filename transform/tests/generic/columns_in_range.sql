{#- Every non-NULL value of every column whose name ends with `suffix` lies in
    [min_value, max_value]: one test for a family of generated columns (e.g. all `_grade`s). -#}
{% test columns_in_range(model, suffix, min_value, max_value) %}
{%- set columns = [] -%}
{%- for column in adapter.get_columns_in_relation(model) if column.name.endswith(suffix) -%}
    {%- do columns.append(column) -%}
{%- endfor -%}
{%- if columns | length == 0 %}
select 'no column ends with {{ suffix }}' as problem
{%- else %}
select *
from (
    {%- for column in columns %}
    select '{{ column.name }}' as column_name, toFloat64({{ column.name }}) as value
    from {{ model }}
    where {{ column.name }} is not null and ({{ column.name }} < {{ min_value }} or {{ column.name }} > {{ max_value }})
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)
{%- endif %}
{% endtest %}
