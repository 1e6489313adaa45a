{{ config(order_by='(source, endpoint)', tags=['monitoring']) }}
-- Scrape health per source and endpoint: volume, success rate, latency and errors over the
-- last hour and the last 24 hours before as_of (the newest request in Beat's log), and how long
-- since the last success. Read every 5 minutes by the monitoring tier, so it reads only the
-- log's last 24 hours (on its (source, started_at) order); the newest request and success of
-- every earlier hour come from the hourly rollup int_monitoring__scrape_hours.
with as_of as (
    select {{ beat_as_of() }} as as_of
),
last_day as (
    select
        source,
        endpoint,
        started_at,
        is_success,
        error_class,
        latency_ms,
        true as in_last_day,
        started_at > (select as_of from as_of) - interval 1 hour as in_last_hour
    from {{ ref('stg_beat__scrape_requests') }}
    where started_at > (select as_of from as_of) - interval 24 hour
),
earlier as (
    -- each hour's newest request (not a success) and newest success (epoch when none), as rows
    -- outside both windows: they count only in the newest request and the newest success
    select
        source,
        endpoint,
        arrayJoin([
            (cast(last_request_at, 'DateTime64(3, \'UTC\')'), false),
            (cast(last_success_at, 'DateTime64(3, \'UTC\')'), true)
        ]) as seen,
        seen.1 as started_at,
        seen.2 as is_success,
        null as error_class,
        toUInt64(0) as latency_ms,
        false as in_last_day,
        false as in_last_hour
    from {{ ref('int_monitoring__scrape_hours') }}
),
requests as (
    select source, endpoint, started_at, is_success, error_class, latency_ms, in_last_day, in_last_hour
    from last_day
    union all
    select source, endpoint, started_at, is_success, error_class, latency_ms, in_last_day, in_last_hour
    from earlier
)
select
    toLowCardinality(toString(source)) as source,
    toLowCardinality(toString(endpoint)) as endpoint,
    toInt64(countIf(in_last_hour)) as requests_1h,
    toInt64(countIf(in_last_hour and not is_success)) as failures_1h,
    toNullable(toFloat64({{ safe_divide('countIf(in_last_hour and is_success)', 'countIf(in_last_hour)') }})) as success_rate_1h,
    toInt64(countIf(in_last_day)) as requests_24h,
    toInt64(countIf(in_last_day and not is_success)) as failures_24h,
    toNullable(toFloat64({{ safe_divide('countIf(in_last_day and is_success)', 'countIf(in_last_day)') }})) as success_rate_24h,
    toInt64(countIf(in_last_day and error_class = 'RateLimited')) as rate_limited_24h,
    toNullable(toFloat64(quantileIf(0.5)(latency_ms, in_last_day))) as latency_p50_ms_24h,
    toNullable(toFloat64(quantileIf(0.95)(latency_ms, in_last_day))) as latency_p95_ms_24h,
    toNullable(toString(nullIf(topKIf(1)(error_class, in_last_day and not is_success)[1], ''))) as top_error_class_24h,
    max(started_at) as last_request_at,
    maxIf(started_at, is_success) as last_success_at,
    toInt64(dateDiff('minute', maxIf(started_at, is_success), (select as_of from as_of))) as minutes_since_success,
    (select as_of from as_of) as as_of
from requests
group by source, endpoint
