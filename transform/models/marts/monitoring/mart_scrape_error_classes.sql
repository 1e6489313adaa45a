{{ config(order_by='(source, endpoint, error_class)', tags=['monitoring']) }}
-- Error classes per source and endpoint over the last var monitoring_error_days days before
-- as_of: failures in the last 24 hours and in the window, each class's share of the failures
-- and of all requests, when it was first and last seen, and whether a retry can help. The
-- operator's triage table: which error to fix first, and whether it is still happening.
{% set days = var('monitoring_error_days') %}
with as_of as (
    select {{ beat_as_of() }} as as_of
),
failures as (
    select
        source,
        endpoint,
        error_class,
        count() as failures_window,
        countIf(started_at > (select as_of from as_of) - interval 24 hour) as failures_24h,
        min(started_at) as first_seen_at,
        max(started_at) as last_seen_at,
        any(is_retryable) as is_retryable
    from {{ ref('stg_beat__scrape_failures') }}
    where started_at > (select as_of from as_of) - interval {{ days }} day
      and started_at <= (select as_of from as_of)
    group by source, endpoint, error_class
),
totals as (
    select source, endpoint, count() as requests_window, countIf(not is_success) as all_failures_window
    from {{ ref('stg_beat__scrape_requests') }}
    where started_at > (select as_of from as_of) - interval {{ days }} day
      and started_at <= (select as_of from as_of)
    group by source, endpoint
)
select
    toLowCardinality(toString(f.source)) as source,
    toLowCardinality(toString(f.endpoint)) as endpoint,
    toLowCardinality(toString(f.error_class)) as error_class,
    toInt64(f.failures_24h) as failures_24h,
    toInt64(f.failures_window) as failures_window,
    toNullable(toFloat64({{ safe_divide('f.failures_window', 't.all_failures_window') }})) as share_of_failures,
    toNullable(toFloat64({{ safe_divide('f.failures_window', 't.requests_window') }})) as share_of_requests,
    f.first_seen_at as first_seen_at,
    f.last_seen_at as last_seen_at,
    toInt64(dateDiff('minute', f.last_seen_at, (select as_of from as_of))) as minutes_since_last_seen,
    toBool(coalesce(f.is_retryable, false)) as is_retryable,
    (select as_of from as_of) as as_of
from failures as f
inner join totals as t on t.source = f.source and t.endpoint = f.endpoint
