{{ config(order_by='(dimension, dimension_value, audience_rank, profile_key)', tags=['leaderboards']) }}
-- Newcomers: profiles on today's audience top list of a dimension value that were not on it 7
-- days before as_of (ranked lower, or not measured yet). The 'New on the leaderboard' screen and
-- the weekly digest campaign managers get for the markets and categories they follow.
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(platform)) as platform,
    toNullable(toInt64(audience)) as audience,
    toNullable(toInt64(audience_7d_ago)) as audience_7d_ago,
    toInt32(assumeNotNull(audience_rank)) as audience_rank,
    toNullable(toInt32(audience_rank_7d_ago)) as audience_rank_7d_ago,
    toNullable(toFloat64(growth_30d_pct)) as growth_30d_pct
from {{ ref('int_leaderboards__ranked') }}
where movement_7d = 'new'
