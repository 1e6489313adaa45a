{{ config(order_by='(source, endpoint, hour_start)', tags=['monitoring']) }}
-- Success rate per source, endpoint and hour over the last var monitoring_hours hours before
-- as_of, every hour present (a silent hour is a row with no requests): the time series of the
-- scraper operator's dashboard, where a dip or a gap shows when a problem started.
select
    source,
    endpoint,
    hour_start,
    toInt64(requests) as requests,
    toInt64(successes) as successes,
    toInt64(failures) as failures,
    toNullable(toFloat64({{ safe_divide('successes', 'requests') }})) as success_rate,
    is_partial_hour,
    as_of
from {{ ref('int_monitoring__requests_hourly') }}
