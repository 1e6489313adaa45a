{{ config(materialized='table', order_by='(dimension, dimension_value, profile_key)', tags=['leaderboards']) }}
-- The ranked leaderboard population every leaderboard-family mart selects from: each
-- non-deleted profile once per dimension below, ranked within its dimension value by audience,
-- engagement and 30-day growth today, and by audience 7 and 30 days before as_of (the earlier
-- leaderboards, from the audience int_instagram__profiles / int_youtube__channels carry).
-- The ranks follow every leaderboard's rules (macro leaderboard_ranks): engagement and growth
-- ranks only count profiles with at least var leaderboard_min_audience (1,000) followers, and
-- engagement is ranked per platform.
{% set dimensions = [
    ['overall'],
    ['platform'],
    ['country'],
    ['category'],
    ['language'],
    ['audience_tier'],
    ['country', 'category'],
    ['platform', 'country'],
    ['platform', 'category'],
] %}
{% set size = var('leaderboard_size') %}
with earlier as (
    select profile_key, followers_7d_ago as audience_7d_ago, followers_30d_ago as audience_30d_ago
    from {{ ref('int_instagram__profiles') }}
    union all
    select profile_key, subscribers_7d_ago as audience_7d_ago, subscribers_30d_ago as audience_30d_ago
    from {{ ref('int_youtube__channels') }}
),
profiles as (
    select
        'all' as overall,
        d.profile_key as profile_key,
        d.handle as handle,
        d.platform as platform,
        d.country as country,
        d.category as category,
        d.language as language,
        d.audience_tier as audience_tier,
        d.audience as audience,
        d.engagement_rate as engagement_rate,
        d.audience_growth_30d_pct as growth_30d_pct,
        e.audience_7d_ago as audience_7d_ago,
        e.audience_30d_ago as audience_30d_ago
    from {{ ref('int_profiles__leaderboard_dimensions') }} as d
    left join earlier as e on e.profile_key = d.profile_key
),
ranked as (
    {{ leaderboard_ranks('profiles', dimensions, earlier_audiences=[
        ('audience_rank_7d_ago', 'audience_7d_ago'),
        ('audience_rank_30d_ago', 'audience_30d_ago'),
    ]) }}
)
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toString(platform) as platform,
    toString(country) as country,
    toString(category) as category,
    toString(language) as language,
    toString(audience_tier) as audience_tier,
    toNullable(toUInt64(audience)) as audience,
    toNullable(toUInt64(audience_7d_ago)) as audience_7d_ago,
    toNullable(toUInt64(audience_30d_ago)) as audience_30d_ago,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toNullable(toFloat64(growth_30d_pct)) as growth_30d_pct,
    toNullable(toUInt64(audience_rank)) as audience_rank,
    toNullable(toUInt64(engagement_rank)) as engagement_rank,
    toNullable(toUInt64(growth_rank)) as growth_rank,
    toNullable(toUInt64(audience_rank_7d_ago)) as audience_rank_7d_ago,
    toNullable(toUInt64(audience_rank_30d_ago)) as audience_rank_30d_ago,
    -- positions gained since the earlier leaderboard (positive = moved up)
    toNullable(toInt64(audience_rank_7d_ago) - toInt64(audience_rank)) as audience_rank_change_7d,
    toNullable(toInt64(audience_rank_30d_ago) - toInt64(audience_rank)) as audience_rank_change_30d,
    -- the profile's place on the top-N list today against 7 days before
    toString(multiIf(
        audience_rank <= {{ size }} and (audience_rank_7d_ago is null or audience_rank_7d_ago > {{ size }}), 'new',
        audience_rank is null or audience_rank > {{ size }}, if(audience_rank_7d_ago <= {{ size }}, 'dropped', 'outside'),
        audience_rank < audience_rank_7d_ago, 'up',
        audience_rank > audience_rank_7d_ago, 'down',
        'same'
    )) as movement_7d,
    toUInt64(dimension_profiles) as dimension_profiles
from ranked
