{{ config(order_by='(source, hour_start)', tags=['monitoring']) }}
-- Rate limiting per source and hour over the last var monitoring_hours hours before as_of:
-- requests throttled by the platform (Instagram's 429 RateLimited, YouTube's QuotaExceeded), their
-- share of the hour's requests and the workers hit. The operator reads it to pace the workers
-- and rotate accounts or proxies before a burst turns into a ban.
with per_source as (
    select
        source,
        hour_start,
        sum(requests) as source_requests,
        sum(rate_limited) as source_rate_limited,
        max(rate_limited_workers) as max_workers_limited,
        any(is_partial_hour) as partial,
        any(as_of) as window_end
    from {{ ref('int_monitoring__requests_hourly') }}
    group by source, hour_start
)
select
    toLowCardinality(toString(source)) as source,
    hour_start,
    toInt64(source_requests) as requests,
    toInt64(source_rate_limited) as rate_limited,
    toNullable(toFloat64({{ safe_divide('source_rate_limited', 'source_requests') }})) as rate_limited_share,
    toInt32(max_workers_limited) as max_workers_limited_per_endpoint,
    toBool(partial) as is_partial_hour,
    window_end as as_of
from per_source
