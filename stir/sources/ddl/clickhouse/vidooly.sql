-- Vidooly: a third party's weekly estimates for YouTube channels (see docs/sources.md).

CREATE DATABASE IF NOT EXISTS raw_vidooly;

-- Grain: one row per channel, its latest estimate. Vidooly re-delivers every covered channel
-- each week; only the newest estimate matters, so the version is the estimate time and older
-- weeks collapse away. Channels Vidooly covers may be missing from our scrapes and vice versa.
CREATE TABLE IF NOT EXISTS raw_vidooly.channel_estimates
(
    channel_id                        String,
    estimated_at                      DateTime64(3, 'UTC'),
    category                          LowCardinality(Nullable(String)),
    estimated_monthly_views           Nullable(UInt64),
    estimated_monthly_earnings_low    Nullable(Decimal(12, 2)),  -- USD
    estimated_monthly_earnings_high   Nullable(Decimal(12, 2)),  -- USD
    audience_countries                Map(LowCardinality(String), Float32),  -- share of views
    _ingested_at                      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(estimated_at)
ORDER BY channel_id;
