{{ config(materialized='table', order_by='tracked_profile_id', tags=['collections']) }}
-- One row per tracked Instagram profile with comments Beat fetched: its distinct commenters and
-- comments. The size of the commenter sample behind every shared-commenter overlap estimate
-- (int_audience__shared_commenters); only tracked profiles can be collection members.
select
    t.tracked_profile_id as tracked_profile_id,
    any(t.profile_key) as profile_key,
    toUInt64(uniqExact(c.commenter_username)) as commenters,
    toUInt64(count()) as comments
from {{ ref('stg_instagram__comments') }} as c
inner join {{ ref('stg_coffee__tracked_profiles') }} as t
    on t.platform = 'instagram' and t.platform_id = toString(c.profile_id)
group by t.tracked_profile_id
