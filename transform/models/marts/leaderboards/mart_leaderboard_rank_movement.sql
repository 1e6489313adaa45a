{{ config(order_by='(dimension, dimension_value, profile_key)', tags=['leaderboards']) }}
-- Rank movement on every audience top list (9 dimensions) today against 7 days before as_of:
-- each profile on today's list or last week's, its two ranks, the positions gained and
-- new / up / down / same / dropped. The app draws the arrows beside each leaderboard entry
-- from it, and lists who fell off.
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(platform)) as platform,
    toNullable(toInt64(audience)) as audience,
    toNullable(toInt64(audience_7d_ago)) as audience_7d_ago,
    toNullable(toInt32(audience_rank)) as audience_rank,
    toNullable(toInt32(audience_rank_7d_ago)) as audience_rank_7d_ago,
    toNullable(toInt64(audience_rank_change_7d)) as rank_change,
    toLowCardinality(toString(movement_7d)) as movement
from {{ ref('int_leaderboards__ranked') }}
where movement_7d != 'outside'
