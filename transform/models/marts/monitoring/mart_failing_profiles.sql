{{ config(order_by='(source, endpoint, profile_key)', tags=['monitoring']) }}
-- Profiles and channels whose latest var failing_min_failures or more requests in the last
-- var monitoring_target_days days failed in a row (no success since): the streak, the last error
-- and whether a retry can help. The operator reads it to find targets stuck behind a login wall,
-- a broken parser or a deletion, instead of retrying them forever.
select
    r.source as source,
    r.endpoint as endpoint,
    r.profile_key as profile_key,
    r.target_id as target_id,
    toInt64(r.consecutive_failures) as consecutive_failures,
    toInt64(r.requests) as requests_window,
    toInt64(r.failures) as failures_window,
    toNullable(toString(r.last_error_class)) as last_error_class,
    r.last_requested_at as last_failure_at,
    r.last_success_at as last_success_at,
    r.last_failure_is_retryable as is_retryable,
    toBool(t.tracked_profile_id is not null) as is_tracked,
    r.as_of as as_of
from {{ ref('int_monitoring__target_requests') }} as r
left join {{ ref('stg_coffee__tracked_profiles') }} as t on t.profile_key = r.profile_key
where r.consecutive_failures >= {{ var('failing_min_failures') }}
