{#- The top `top_n` posts by `metric` within each group of `partition_by`, among the rows of
    `relation` (default int_ranking__posts, or a subquery over it) matching `where`: the shared
    body of the "top posts per ..." marts. A subquery of the relation's columns plus
    rank_in_group (1 = best; ties share a rank) and group_posts (posts ranked in the group);
    the mart casts the columns it serves. -#}
{% macro top_posts(partition_by, metric='engagement_rate', where='true', top_n=none, relation=none) -%}
    {%- set n = top_n if top_n is not none else var('ranking_top_n') -%}
    {%- set source_relation = relation if relation is not none else ref('int_ranking__posts') -%}
    (
        select *
        from (
            select
                *,
                {{ rank_within(metric, partition_by) }} as rank_in_group,
                count() over (partition by {{ partition_by | join(', ') }}, isNull({{ metric }})) as group_posts
            from {{ source_relation }}
            where {{ where }}
        )
        where rank_in_group <= {{ n }}
    )
{%- endmacro %}
