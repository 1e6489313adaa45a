{{ config(materialized='table', order_by='(platform, profile_key)', tags=['profile-ranking']) }}
-- Every non-deleted profile with the components of its Stir creator score and the score itself:
-- the mean of its percentiles within the platform for audience, engagement rate and 30-day
-- growth, and its consistency score (a missing component counts as 0). The ranked base of the
-- creator rank marts (per platform, category, country) and of the category percentiles.
with profiles as (
    select
        m.platform as platform,
        m.profile_key as profile_key,
        m.handle as handle,
        coalesce(toString(m.category), 'unknown') as category,
        coalesce(toString(m.country), 'unknown') as country,
        m.audience as audience,
        m.engagement_rate as engagement_rate,
        m.audience_growth_30d_pct as audience_growth_30d_pct,
        m.posts_per_week as posts_per_week,
        s.consistency_score as consistency_score,
        s.comment_like_ratio as comment_like_ratio,
        coalesce(ig.is_private, false) as is_private
    from {{ ref('mart_profile_metrics') }} as m
    left join {{ ref('int_ranking__creator_stats') }} as s on s.profile_key = m.profile_key
    left join {{ ref('int_instagram__profiles') }} as ig on ig.profile_key = m.profile_key
    where not m.is_deleted
),
percentiles as (
    select
        *,
        {{ percentile_grades(['audience', 'engagement_rate', 'audience_growth_30d_pct'], partition_by=['platform']) }}
    from profiles
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(category)) as category,
    toLowCardinality(toString(country)) as country,
    toNullable(toUInt64(audience)) as audience,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toNullable(toFloat64(audience_growth_30d_pct)) as audience_growth_30d_pct,
    toFloat64(posts_per_week) as posts_per_week,
    toBool(is_private) as is_private,
    toNullable(toFloat64(consistency_score)) as consistency_score,
    toNullable(toFloat64(comment_like_ratio)) as comment_like_ratio,
    toNullable(toFloat64(audience_percentile)) as audience_percentile,
    toNullable(toFloat64(engagement_rate_percentile)) as engagement_percentile,
    toNullable(toFloat64(audience_growth_30d_pct_percentile)) as growth_percentile,
    toFloat64((coalesce(audience_percentile, 0) + coalesce(engagement_rate_percentile, 0)
        + coalesce(audience_growth_30d_pct_percentile, 0) + coalesce(consistency_score, 0)) / 4) as creator_score
from percentiles
