{{ config(order_by='channel_id', tags=['profile-ranking']) }}
-- One row per YouTube channel we scrape that Vidooly estimates: its monthly and yearly earnings
-- range (USD), the revenue per 1,000 views Vidooly implies, and the same range rescaled to the
-- views we observed (the RPM applied to observed monthly views). The earnings panel of a
-- channel page; brand managers use it to sanity-check a creator's fee.
with channels as (
    select
        *,
        {{ safe_divide('estimated_monthly_earnings_low * 1000', 'estimated_monthly_views') }} as rpm_low,
        {{ safe_divide('estimated_monthly_earnings_high * 1000', 'estimated_monthly_views') }} as rpm_high
    from {{ ref('int_estimates__vidooly_vs_observed') }}
)
select
    toString(channel_id) as channel_id,
    toString(profile_key) as profile_key,
    toLowCardinality(toNullable(toString(category))) as category,
    toLowCardinality(toNullable(toString(country))) as country,
    toNullable(toInt64(subscribers)) as subscribers,
    toNullable(toInt64(estimated_monthly_views)) as estimated_monthly_views,
    toNullable(toFloat64(estimated_monthly_earnings_low)) as monthly_earnings_low_usd,
    toNullable(toFloat64(estimated_monthly_earnings_high)) as monthly_earnings_high_usd,
    toNullable(toFloat64((estimated_monthly_earnings_low + estimated_monthly_earnings_high) / 2)) as monthly_earnings_mid_usd,
    toNullable(toFloat64(estimated_monthly_earnings_low * 12)) as yearly_earnings_low_usd,
    toNullable(toFloat64(estimated_monthly_earnings_high * 12)) as yearly_earnings_high_usd,
    toNullable(toFloat64(rpm_low)) as rpm_low_usd,
    toNullable(toFloat64(rpm_high)) as rpm_high_usd,
    toNullable(toFloat64(observed_monthly_views)) as observed_monthly_views,
    toNullable(toFloat64(rpm_low * observed_monthly_views / 1000)) as observed_monthly_earnings_low_usd,
    toNullable(toFloat64(rpm_high * observed_monthly_views / 1000)) as observed_monthly_earnings_high_usd,
    toNullable(toFloat64({{ safe_divide('(estimated_monthly_earnings_low + estimated_monthly_earnings_high) / 2', 'subscribers') }})) as monthly_earnings_mid_per_subscriber_usd,
    estimated_at as estimated_at
from channels
