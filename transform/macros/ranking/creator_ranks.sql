{#- The creators of int_ranking__creator_scores ranked by creator score within each group of
    `partition_by` (all of them, or the top `top_n` of each group): the shared body of the
    creator rank marts per platform, category and country. -#}
{% macro creator_ranks(partition_by, top_n=none) -%}
    select
        toLowCardinality(toString(platform)) as platform,
        toString(profile_key) as profile_key,
        toString(handle) as handle,
        toLowCardinality(toString(category)) as category,
        toLowCardinality(toString(country)) as country,
        toNullable(toInt64(audience)) as audience,
        engagement_rate,
        audience_growth_30d_pct,
        consistency_score,
        toFloat64(creator_score) as creator_score,
        toInt32(score_rank) as score_rank,
        toInt32(group_profiles) as group_profiles,
        toFloat64(1 - score_rank_pct) as score_percentile
    from (
        select
            *,
            rank() over (partition by {{ partition_by | join(', ') }} order by creator_score desc) as score_rank,
            percent_rank() over (partition by {{ partition_by | join(', ') }} order by creator_score desc) as score_rank_pct,
            count() over (partition by {{ partition_by | join(', ') }}) as group_profiles
        from {{ ref('int_ranking__creator_scores') }}
    )
    {%- if top_n is not none %}
    where score_rank <= {{ top_n }}
    {%- endif %}
{%- endmacro %}
