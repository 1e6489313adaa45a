{{ config(order_by='(profile_key, changed_at, change_type)', tags=['profile-ranking']) }}
-- Instagram profiles whose status changed in the lookback window before as_of: went private or
-- public (consecutive snapshots disagree on is_private), deleted or restored (Beat's profile
-- requests switch between success and NotFound; transient errors are ignored). Brand managers
-- read it to see which creators of their lists disappeared or closed their account.
{% set lookback = var('ranking_lookback_days') %}
with as_of as (
    select {{ as_of(ref('int_instagram__profiles'), 'as_of') }} as as_of
),
privacy as (
    select
        profile_id,
        scraped_at as observed_at,
        is_private as state,
        lagInFrame(is_private) over w as previous_state,
        lagInFrame(scraped_at) over w as previous_observed_at,
        row_number() over w as n
    from {{ ref('stg_instagram__account_snapshots') }}
    window w as (partition by profile_id order by scraped_at rows between unbounded preceding and current row)
),
existence as (
    -- only definitive answers: the profile was there (success) or it was not (NotFound)
    select
        profile_id,
        started_at as observed_at,
        not is_success as state,
        lagInFrame(not is_success) over w as previous_state,
        lagInFrame(started_at) over w as previous_observed_at,
        row_number() over w as n
    from {{ ref('stg_beat__instagram_profile_requests') }}
    where is_success or error_class = 'NotFound'
    window w as (partition by profile_id order by started_at rows between unbounded preceding and current row)
),
changes as (
    select profile_id, if(state, 'went_private', 'went_public') as change_type, observed_at, previous_observed_at
    from privacy
    where n > 1 and state != previous_state
    union all
    select profile_id, if(state, 'deleted', 'restored') as change_type, observed_at, previous_observed_at
    from existence
    where n > 1 and state != previous_state
)
select
    toString(p.profile_key) as profile_key,
    toInt64(c.profile_id) as profile_id,
    toString(p.username) as username,
    toLowCardinality(toNullable(toString(p.category))) as category,
    toInt64(p.followers) as followers,
    toLowCardinality(toString(c.change_type)) as change_type,
    c.observed_at as changed_at,
    c.previous_observed_at as previous_observed_at,
    toBool(p.is_private) as is_private_now,
    toBool(p.is_deleted) as is_deleted_now,
    (select as_of from as_of) as as_of
from changes as c
inner join {{ ref('int_instagram__profiles') }} as p on p.profile_id = c.profile_id
where c.observed_at > (select as_of from as_of) - interval {{ lookback }} day
