{{ config(materialized='table', order_by='(source, endpoint, profile_key)', tags=['monitoring']) }}
-- One row per profile or channel Beat asked for in the last var monitoring_target_days days
-- before as_of (profile and channel endpoints): its newest request and outcome, its newest
-- success in the window, and the failures since that success (its current failure streak). The
-- base of the stale-profile and failing-profile marts; a bounded read of the log.
with as_of as (
    select {{ beat_as_of() }} as as_of
),
requests as (
    select
        source,
        endpoint,
        concat(if(endpoint = 'channel', 'youtube', 'instagram'), ':', target_id) as profile_key,
        target_id,
        request_id,
        started_at,
        is_success,
        error_class
    from {{ ref('stg_beat__scrape_requests') }}
    where endpoint in ('profile', 'channel')
      and started_at > (select as_of from as_of) - interval {{ var('monitoring_target_days') }} day
      and started_at <= (select as_of from as_of)
),
per_target as (
    select
        source,
        endpoint,
        profile_key,
        any(target_id) as target_id,
        count() as requests,
        countIf(not is_success) as failures,
        max(started_at) as last_requested_at,
        -- latest(), NULL included: a success's NULL error class must win over older failures
        {{ latest('error_class', 'started_at') }} as last_error_class,
        {{ latest('request_id', 'started_at') }} as last_request_id,
        maxIf(started_at, is_success) as last_success_at_or_epoch,
        countIf(is_success) > 0 as has_success,
        groupArrayIf(started_at, not is_success) as failure_times
    from requests
    group by source, endpoint, profile_key
)
select
    toLowCardinality(toString(source)) as source,
    toLowCardinality(toString(endpoint)) as endpoint,
    toString(profile_key) as profile_key,
    toString(target_id) as target_id,
    toUInt64(requests) as requests,
    toUInt64(failures) as failures,
    last_requested_at,
    toNullable(toString(last_error_class)) as last_error_class,
    -- staging's judgement of the newest request's failure (false when it succeeded)
    cast(coalesce(f.is_retryable, false), 'Bool') as last_failure_is_retryable,
    if(has_success, toNullable(last_success_at_or_epoch), null) as last_success_at,
    toUInt64(if(has_success, arrayCount(t -> t > last_success_at_or_epoch, failure_times), length(failure_times))) as consecutive_failures,
    (select as_of from as_of) as as_of
from per_target
left join (
    select request_id, is_retryable
    from {{ ref('stg_beat__scrape_failures') }}
    where started_at > (select as_of from as_of) - interval {{ var('monitoring_target_days') }} day
) as f on f.request_id = per_target.last_request_id
