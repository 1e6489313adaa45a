{{ config(order_by='(dimension, dimension_value, rising_rank, profile_key)', tags=['leaderboards']) }}
-- Rising creators: on today's audience top list of a dimension value and climbing, ordered by
-- the positions gained against the leaderboard of 30 days before as_of (var
-- leaderboard_rising_size per value). The 'Rising stars' screen brand managers scout from.
{% set size = var('leaderboard_size') %}
with risers as (
    select
        *,
        row_number() over (partition by dimension, dimension_value order by audience_rank_change_30d desc, audience_rank, profile_key) as rising_rank
    from {{ ref('int_leaderboards__ranked') }}
    where dimension in ('overall', 'platform', 'country', 'category')
      and audience_rank <= {{ size }}
      and audience_rank_change_30d > 0
)
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toInt32(rising_rank) as rising_rank,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(platform)) as platform,
    toNullable(toInt64(audience)) as audience,
    toNullable(toInt64(audience_30d_ago)) as audience_30d_ago,
    toNullable(toFloat64(growth_30d_pct)) as growth_30d_pct,
    toInt32(assumeNotNull(audience_rank)) as audience_rank,
    toInt32(assumeNotNull(audience_rank_30d_ago)) as audience_rank_30d_ago,
    toInt64(assumeNotNull(audience_rank_change_30d)) as positions_gained
from risers
where rising_rank <= {{ var('leaderboard_rising_size') }}
