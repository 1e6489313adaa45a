{#- One SELECT per dimension (a list of columns of `relation`), UNION ALL'ed: each row of
    `relation` once per dimension, with its dimension name ('country+category'), value
    ('IN|beauty'), the size of its dimension value and, for each (rank name, metric) of
    `ranks`, its rank() among the rows of the same value with a non-NULL metric (1 = largest;
    NULL when the metric is NULL, or when `eligible_ranks` names the rank and the row fails
    `eligible`). Every other column of `relation` is carried through. -#}
{% macro leaderboard_ranks(relation, dimensions, ranks, eligible='true', eligible_ranks=[]) -%}
    {%- for dims in dimensions %}
    select
        '{{ dims | join("+") }}' as dimension,
        concat({{ dims | join(", '|', ") }}) as dimension_value,
        *,
        {%- for name, metric in ranks %}
        {%- set condition = metric ~ ' is not null' ~ (' and (' ~ eligible ~ ')' if name in eligible_ranks else '') %}
        if({{ condition }}, rank() over (partition by {{ dims | join(', ') }}, {{ condition }} order by {{ metric }} desc), null) as {{ name }},
        {%- endfor %}
        count() over (partition by {{ dims | join(', ') }}) as dimension_profiles
    from {{ relation }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
