{{ config(order_by='(dimension, dimension_value)', tags=['leaderboards']) }}
-- One row per leaderboard (dimension and value): how many profiles it ranks, their median
-- audience, engagement and growth, the leader and the audience it takes to make the top list.
-- The leaderboard index page, and brand managers sizing a market before opening its list.
{% set size = var('leaderboard_size') %}
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toInt32(count()) as profiles,
    toNullable(toFloat64(quantileExactIf(0.5)(audience, audience is not null))) as median_audience,
    toNullable(toFloat64(quantileExactIf(0.9)(audience, audience is not null))) as p90_audience,
    toNullable(toFloat64(quantileExactIf(0.5)(engagement_rate, engagement_rate is not null))) as median_engagement_rate,
    toNullable(toFloat64(quantileExactIf(0.5)(growth_30d_pct, growth_30d_pct is not null))) as median_growth_30d_pct,
    toNullable(toFloat64(avgIf(growth_30d_pct > 0.01, growth_30d_pct is not null))) as growing_share,
    toNullable(toString(if(countIf(audience_rank is not null) = 0, null, argMinIf(profile_key, (audience_rank, profile_key), audience_rank is not null)))) as leader_profile_key,
    toNullable(toInt64(maxIf(audience, audience_rank is not null))) as leader_audience,
    toNullable(toInt64(minIf(audience, audience_rank <= {{ size }}))) as top_list_min_audience,
    toInt32(countIf(movement_7d = 'new')) as newcomers_7d
from {{ ref('int_leaderboards__ranked') }}
group by dimension, dimension_value
