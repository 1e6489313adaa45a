-- Every privacy change in mart_profile_status_changes is real in the raw snapshots: the raw
-- snapshot at changed_at has the new state and the one at previous_observed_at the old one, with
-- no snapshot in between; every deletion follows a success and is itself a NotFound request.
with raw_snapshots as (
    -- `found` tells a match from a miss whether or not join_use_nulls is on
    select profile_id, scraped_at, is_private, 1 as found
    from {{ source('instagram', 'account_snapshots') }} final
),
changes as (
    select * from {{ ref('mart_profile_status_changes') }}
),
in_between as (
    select c.profile_key, c.change_type, c.changed_at,
           countIf(r.scraped_at > c.previous_observed_at and r.scraped_at < c.changed_at) as snapshots_between
    from changes as c
    inner join raw_snapshots as r on r.profile_id = c.profile_id
    group by c.profile_key, c.change_type, c.changed_at
)
select c.profile_key, c.change_type, c.changed_at
from changes as c
left join raw_snapshots as now_ on now_.profile_id = c.profile_id and now_.scraped_at = c.changed_at
left join raw_snapshots as before on before.profile_id = c.profile_id and before.scraped_at = c.previous_observed_at
where c.change_type in ('went_private', 'went_public')
  and (
    coalesce(now_.found, 0) = 0 or coalesce(before.found, 0) = 0
    or now_.is_private != (c.change_type = 'went_private')
    or before.is_private = now_.is_private
  )
union all
select profile_key, change_type, changed_at
from in_between
where change_type in ('went_private', 'went_public') and snapshots_between > 0
union all
select c.profile_key, c.change_type, c.changed_at
from changes as c
left join (
    select toUInt64(target_id) as profile_id, started_at, status, error_class
    from {{ source('beat', 'scrape_requests') }}
    where source = 'instagram' and endpoint = 'profile'
) as r on r.profile_id = c.profile_id and r.started_at = c.changed_at
where c.change_type = 'deleted' and coalesce(r.error_class, '') != 'NotFound'
