{{ config(order_by='(priority_rank, profile_key)', tags=['monitoring']) }}
-- Tracked profiles (the app promises them fresh) whose newest successful scrape is older than var
-- stale_after_hours before as_of, or absent from the last var monitoring_target_days days: the
-- operator's re-scrape queue, largest audience first. Profiles whose latest request said
-- NotFound are flagged and queued last, since a retry will not bring them back.
with targets as (
    select * from {{ ref('int_monitoring__target_requests') }}
),
as_of as (
    select {{ beat_as_of() }} as as_of
),
tracked as (
    select
        t.tracked_profile_id as tracked_profile_id,
        t.profile_key as profile_key,
        t.platform as platform,
        m.handle as handle,
        m.audience as audience,
        r.last_requested_at as last_requested_at,
        r.last_success_at as last_success_at,
        r.last_error_class as last_error_class,
        coalesce(r.consecutive_failures, 0) as consecutive_failures,
        coalesce(r.last_error_class = 'NotFound', false) as is_likely_deleted
    from {{ ref('stg_coffee__tracked_profiles') }} as t
    left join targets as r on r.profile_key = t.profile_key
    left join {{ ref('mart_profile_metrics') }} as m on m.profile_key = t.profile_key
    where r.last_success_at is null
       or r.last_success_at <= (select as_of from as_of) - interval {{ var('stale_after_hours') }} hour
)
select
    toString(profile_key) as profile_key,
    toInt64(tracked_profile_id) as tracked_profile_id,
    toLowCardinality(toString(platform)) as platform,
    toNullable(toString(handle)) as handle,
    toNullable(toInt64(audience)) as audience,
    last_requested_at,
    last_success_at,
    toNullable(toInt64(dateDiff('hour', last_success_at, (select as_of from as_of)))) as hours_since_success,
    toNullable(toString(last_error_class)) as last_error_class,
    toInt64(consecutive_failures) as consecutive_failures,
    toBool(is_likely_deleted) as is_likely_deleted,
    toInt32(row_number() over (order by is_likely_deleted, audience desc nulls last, profile_key)) as priority_rank,
    (select as_of from as_of) as as_of
from tracked
