{{ config(order_by='divergence_rank', tags=['profile-ranking']) }}
-- The channels whose Vidooly estimate diverges most from what we observe, to flag in the app
-- and to report to Vidooly: Vidooly's typical bias is removed first (the median log ratio of
-- all measured channels), and a channel is flagged when its robust z-score (distance from that
-- median in units of 1.4826 x the median absolute deviation) is at least var
-- vidooly_outlier_z (2: about the 5% tails of a normal error). Ranked by the deviation. A
-- systematic bias is not flagged here: mart_vidooly_error_distribution shows it.
with measured as (
    select * from {{ ref('int_estimates__vidooly_vs_observed') }} where views_log_ratio is not null
),
spread as (
    select median(views_log_ratio) as median_log_ratio from measured
),
mad as (
    select median(abs(views_log_ratio - (select median_log_ratio from spread))) * 1.4826 as scale from measured
),
scored as (
    select
        *,
        (select median_log_ratio from spread) as typical_log_ratio,
        {{ safe_divide('views_log_ratio - (select median_log_ratio from spread)', '(select scale from mad)') }} as robust_z
    from measured
)
select
    toString(channel_id) as channel_id,
    toString(profile_key) as profile_key,
    toString(title) as title,
    toLowCardinality(toNullable(toString(category))) as category,
    toLowCardinality(toNullable(toString(country))) as country,
    toNullable(toInt64(estimated_monthly_views)) as estimated_monthly_views,
    toFloat64(assumeNotNull(observed_monthly_views)) as observed_monthly_views,
    toFloat64(assumeNotNull(views_log_ratio)) as views_log_ratio,
    toFloat64(typical_log_ratio) as typical_log_ratio,
    toFloat64(assumeNotNull(robust_z)) as robust_z,
    toLowCardinality(if(views_log_ratio > typical_log_ratio, 'overestimated', 'underestimated')) as direction,
    toInt32(row_number() over (order by abs(robust_z) desc, views_abs_log_error desc, channel_id)) as divergence_rank
from scored
where abs(robust_z) >= {{ var('vidooly_outlier_z') }}
