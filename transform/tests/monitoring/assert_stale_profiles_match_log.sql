-- mart_stale_profiles lists exactly the tracked profiles whose newest successful request in
-- Beat's whole raw log (no window) is older than the threshold before as_of, or that have none
-- in the target window. It reads the whole log: the daily data-quality run's, not every
-- monitoring run's.
{{ config(tags=['data_quality']) }}
{% set hours = var('stale_after_hours') %}
{% set days = var('monitoring_target_days') %}
with as_of as (
    select max(started_at) as as_of from {{ source('beat', 'scrape_requests') }}
),
last_success as (
    select
        concat(if(endpoint = 'channel', 'youtube', 'instagram'), ':', target_id) as profile_key,
        max(started_at) as last_success_at
    from {{ source('beat', 'scrape_requests') }}
    where status = 'success' and endpoint in ('profile', 'channel')
    group by profile_key
),
expected as (
    select t.profile_key as profile_key
    from {{ ref('stg_coffee__tracked_profiles') }} as t
    left join last_success as s on s.profile_key = t.profile_key
    where s.last_success_at is null
       or s.last_success_at <= (select as_of from as_of) - interval {{ hours }} hour
)
select profile_key, 'stale but not listed' as problem
from expected
where profile_key not in (select profile_key from {{ ref('mart_stale_profiles') }})
union all
select profile_key, 'listed but not stale' as problem
from {{ ref('mart_stale_profiles') }}
where profile_key not in (select profile_key from expected)
