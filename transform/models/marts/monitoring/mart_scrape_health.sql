{{ config(order_by='(source, endpoint)', tags=['monitoring']) }}
-- Scrape health per source and endpoint: volume, success rate, latency and errors over the
-- last hour and the last 24 hours before as_of (the newest request in Beat's log), and how long
-- since the last success. Read every 5 minutes by the monitoring tier.
with requests as (
    select * from {{ ref('stg_beat__scrape_requests') }}
),
as_of as (
    select max(started_at) as as_of from requests
),
windowed as (
    select
        *,
        started_at > (select as_of from as_of) - interval 1 hour as in_last_hour,
        started_at > (select as_of from as_of) - interval 24 hour as in_last_day
    from requests
)
select
    toLowCardinality(toString(source)) as source,
    toLowCardinality(toString(endpoint)) as endpoint,
    toUInt64(countIf(in_last_hour)) as requests_1h,
    toUInt64(countIf(in_last_hour and not is_success)) as failures_1h,
    toNullable(toFloat64({{ safe_divide('countIf(in_last_hour and is_success)', 'countIf(in_last_hour)') }})) as success_rate_1h,
    toUInt64(countIf(in_last_day)) as requests_24h,
    toUInt64(countIf(in_last_day and not is_success)) as failures_24h,
    toNullable(toFloat64({{ safe_divide('countIf(in_last_day and is_success)', 'countIf(in_last_day)') }})) as success_rate_24h,
    toUInt64(countIf(in_last_day and error_class = 'RateLimited')) as rate_limited_24h,
    toNullable(toFloat64(quantileIf(0.5)(latency_ms, in_last_day))) as latency_p50_ms_24h,
    toNullable(toFloat64(quantileIf(0.95)(latency_ms, in_last_day))) as latency_p95_ms_24h,
    toNullable(toString(nullIf(topKIf(1)(error_class, in_last_day and not is_success)[1], ''))) as top_error_class_24h,
    max(started_at) as last_request_at,
    maxIf(started_at, is_success) as last_success_at,
    toInt64(dateDiff('minute', maxIf(started_at, is_success), (select as_of from as_of))) as minutes_since_success,
    (select as_of from as_of) as as_of
from windowed
group by source, endpoint
