{{ config(order_by='(dimension, dimension_value, profile_key)', tags=['leaderboards']) }}
-- Multi-dimensional leaderboards: for every dimension below (a column or a combination of
-- columns of int_profiles__leaderboard_dimensions) and each of its values, the top profiles by
-- audience, by engagement rate and by 30-day growth, ranked by the rules of every leaderboard
-- (macro leaderboard_ranks: engagement per platform, engagement and growth only among profiles
-- with at least var leaderboard_min_audience followers). One row per (dimension, value,
-- profile) that makes any of the three top lists. Adding a dimension is one line.
{% set dimensions = [
    ['platform'],
    ['country'],
    ['category'],
    ['language'],
    ['audience_tier'],
    ['engagement_tier'],
    ['cadence_tier'],
    ['growth_trend'],
    ['platform', 'country'],
    ['platform', 'category'],
    ['platform', 'language'],
    ['platform', 'audience_tier'],
    ['platform', 'engagement_tier'],
    ['platform', 'cadence_tier'],
    ['platform', 'growth_trend'],
    ['country', 'category'],
    ['country', 'language'],
    ['country', 'audience_tier'],
    ['category', 'audience_tier'],
    ['category', 'language'],
    ['category', 'engagement_tier'],
    ['country', 'growth_trend'],
    ['platform', 'country', 'category'],
    ['platform', 'country', 'audience_tier'],
    ['platform', 'category', 'audience_tier'],
    ['platform', 'country', 'language'],
    ['platform', 'category', 'engagement_tier'],
    ['country', 'category', 'audience_tier'],
] %}
{% set size = var('leaderboard_size') %}
with profiles as (
    select
        profile_key,
        handle,
        audience,
        engagement_rate,
        audience_growth_30d_pct as growth_30d_pct,
        platform,
        country,
        category,
        language,
        audience_tier,
        engagement_tier,
        cadence_tier,
        growth_trend
    from {{ ref('int_profiles__leaderboard_dimensions') }}
),
ranked as (
    {{ leaderboard_ranks('profiles', dimensions) }}
)
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    {{ leaderboard_metric_columns() }},
    toInt32(dimension_profiles) as dimension_profiles
from ranked
where audience_rank <= {{ size }} or engagement_rank <= {{ size }} or growth_rank <= {{ size }}
