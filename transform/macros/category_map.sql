{#- Stir's category (and its group) for each label of one source, from the taxonomy drop: a
    subquery to LEFT JOIN on source_category. -#}
{% macro category_map(source_name) -%}
    (
        select source_category, category, category_group
        from {{ ref('stg_drops__categories') }}
        where source = '{{ source_name }}'
    )
{%- endmacro %}
