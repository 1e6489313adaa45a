{{ config(order_by='(source, endpoint, hour_start)', tags=['monitoring']) }}
-- Latency percentiles (p50, p90, p99 over all requests, timeouts included; p50 of the
-- successful ones) per source, endpoint and hour over the last var monitoring_hours hours
-- before as_of: the operator's latency panel, where slow proxies and timeouts show first.
select
    source,
    endpoint,
    hour_start,
    toInt64(requests) as requests,
    latency_p50_ms,
    latency_p90_ms,
    latency_p99_ms,
    success_latency_p50_ms,
    is_partial_hour,
    as_of
from {{ ref('int_monitoring__requests_hourly') }}
