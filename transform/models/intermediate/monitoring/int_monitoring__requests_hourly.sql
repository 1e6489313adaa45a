{{ config(materialized='table', order_by='(source, endpoint, hour_start)', tags=['monitoring']) }}
-- Beat's requests per source, endpoint and clock hour over the last var monitoring_hours hours
-- up to as_of (the newest request; its hour is partial), every hour present even without
-- requests: volume, outcomes, rate limiting and latency percentiles. The one scan of the log
-- that the hourly monitoring marts (success rate, latency, rate limits) share; it reads only
-- the window, on the log's (source, started_at) order.
{% set hours = var('monitoring_hours') %}
with as_of as (
    select {{ beat_as_of() }} as as_of
),
window_start as (
    select toStartOfHour((select as_of from as_of)) - interval {{ hours - 1 }} hour as window_start
),
requests as (
    select *
    from {{ ref('stg_beat__scrape_requests') }}
    where started_at >= (select window_start from window_start)
      and started_at <= (select as_of from as_of)
),
hourly as (
    select
        source,
        endpoint,
        toStartOfHour(started_at) as hour_start,
        count() as requests,
        countIf(is_success) as successes,
        countIf({{ is_rate_limited('error_class') }}) as rate_limited,
        countIf(error_class = 'NotFound') as not_found,
        uniqExactIf(worker, {{ is_rate_limited('error_class') }}) as rate_limited_workers,
        quantilesExact(0.5, 0.9, 0.99)(latency_ms) as latency,
        quantileExactIf(0.5)(latency_ms, is_success) as success_latency_p50
    from requests
    group by source, endpoint, hour_start
),
pairs as (
    -- every source and endpoint seen in the SLO window, so a silent hour shows as zero
    select distinct source, endpoint
    from {{ ref('stg_beat__scrape_requests') }}
    where started_at > (select as_of from as_of) - interval {{ var('slo_window_days') }} day
),
grid as (
    select
        pairs.source as source,
        pairs.endpoint as endpoint,
        assumeNotNull((select window_start from window_start)) + toIntervalHour(n.number) as hour_start
    from pairs
    cross join numbers({{ hours }}) as n
)
select
    toLowCardinality(toString(g.source)) as source,
    toLowCardinality(toString(g.endpoint)) as endpoint,
    toDateTime64(g.hour_start, 3, 'UTC') as hour_start,
    toUInt64(coalesce(h.requests, 0)) as requests,
    toUInt64(coalesce(h.successes, 0)) as successes,
    toUInt64(coalesce(h.requests, 0) - coalesce(h.successes, 0)) as failures,
    toUInt64(coalesce(h.rate_limited, 0)) as rate_limited,
    toUInt64(coalesce(h.not_found, 0)) as not_found,
    toUInt64(coalesce(h.rate_limited_workers, 0)) as rate_limited_workers,
    toNullable(toFloat64(h.latency[1])) as latency_p50_ms,
    toNullable(toFloat64(h.latency[2])) as latency_p90_ms,
    toNullable(toFloat64(h.latency[3])) as latency_p99_ms,
    toNullable(toFloat64(if(h.successes > 0, h.success_latency_p50, null))) as success_latency_p50_ms,
    toBool(coalesce(g.hour_start = toStartOfHour((select as_of from as_of)), false)) as is_partial_hour,
    (select as_of from as_of) as as_of
from grid as g
left join hourly as h
    on h.source = g.source and h.endpoint = g.endpoint and h.hour_start = g.hour_start
