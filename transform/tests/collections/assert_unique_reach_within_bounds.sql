-- A collection's total reach is the summed audience of its live members (recomputed from Coffee
-- and mart_profile_metrics), and its estimated unique reach lies between the largest member's
-- audience and the total reach. Returns the collections that break this.
with recomputed as (
    select
        m.collection_id as collection_id,
        sum(p.audience) as total_reach,
        max(p.audience) as largest
    from {{ ref('stg_coffee__collection_members') }} as m
    inner join {{ ref('stg_coffee__tracked_profiles') }} as t on t.tracked_profile_id = m.tracked_profile_id
    inner join {{ ref('mart_profile_metrics') }} as p on p.profile_key = t.profile_key
    where not p.is_deleted and p.audience is not null
    group by m.collection_id
)
select r.collection_id, r.total_reach, r.unique_reach, x.total_reach as expected_total, x.largest
from {{ ref('mart_collection_reach') }} as r
left join recomputed as x on x.collection_id = r.collection_id
where r.total_reach != coalesce(x.total_reach, 0)
   or r.unique_reach > r.total_reach
   or r.unique_reach < coalesce(x.largest, 0)
