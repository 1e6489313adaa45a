{{ config(order_by='channel_id', tags=['profile-ranking']) }}
-- One row per YouTube channel we scrape that Vidooly estimates: Vidooly's monthly views beside
-- the views we observed over the last ~30 days (int_estimates__vidooly_vs_observed), views per
-- subscriber on both sides, the absolute, relative and log error, and an accuracy band. The
-- "third-party estimate" panel of a channel page: how far to trust Vidooly's number. (Vidooly
-- estimates no subscriber count; subscribers are the observed ones.)
select
    toString(channel_id) as channel_id,
    toString(profile_key) as profile_key,
    toString(title) as title,
    toLowCardinality(toNullable(toString(category))) as category,
    toLowCardinality(toNullable(toString(country))) as country,
    toLowCardinality(toNullable(toString(vidooly_category))) as vidooly_category,
    toNullable(toInt64(subscribers)) as subscribers,
    estimated_at as estimated_at,
    toInt64(estimate_age_days) as estimate_age_days,
    toNullable(toInt64(estimated_monthly_views)) as estimated_monthly_views,
    toNullable(toFloat64(observed_monthly_views)) as observed_monthly_views,
    toNullable(toFloat64(observed_window_days)) as observed_window_days,
    toNullable(toFloat64(views_error)) as views_error,
    toNullable(toFloat64(abs(views_error))) as views_abs_error,
    toNullable(toFloat64(views_error_pct)) as views_error_pct,
    toNullable(toFloat64(views_log_ratio)) as views_log_ratio,
    toNullable(toFloat64({{ safe_divide('estimated_monthly_views', 'subscribers') }})) as estimated_views_per_subscriber,
    toNullable(toFloat64({{ safe_divide('observed_monthly_views', 'subscribers') }})) as observed_views_per_subscriber,
    toLowCardinality(multiIf(
        views_abs_log_error is null, 'unmeasured',
        views_abs_log_error <= log(1.25), 'within_25pct',
        views_abs_log_error <= log(2), 'within_2x',
        views_abs_log_error <= log(10), 'within_10x',
        'beyond_10x')) as accuracy_band,
    as_of as as_of
from {{ ref('int_estimates__vidooly_vs_observed') }}
