{#- dbt's `where` config of a test, with one addition: `__newest_started_at__` stands for the
    newest started_at of the tested relation, so a test of Beat's append-only log can read its
    last day only (`where: "started_at > __newest_started_at__ - interval 1 day"`) counting
    back from the data, not the clock (transform/README.md). A `where` config cannot call
    ref() or source() itself: dbt renders it while parsing. Without the placeholder this is
    dbt's own default. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__newest_started_at__', '(select max(started_at) from ' ~ relation ~ ')') -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
