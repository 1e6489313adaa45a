-- mart_collection_members holds exactly Coffee's memberships (read from the raw replica, deduped
-- on updated_at), and each Instagram member's audience is the follower count of the profile's
-- newest raw snapshot. Returns the memberships that differ.
with coffee as (
    select id as collection_member_id, argMax(collection_id, updated_at) as collection_id
    from {{ source('coffee', 'collection_members') }}
    group by id
),
raw_followers as (
    select concat('instagram:', toString(profile_id)) as profile_key, argMax(followers, scraped_at) as followers
    from {{ source('instagram', 'account_snapshots') }}
    group by profile_id
)
select coalesce(m.collection_member_id, c.collection_member_id) as collection_member_id, 'membership' as problem
from {{ ref('mart_collection_members') }} as m
full outer join coffee as c on c.collection_member_id = m.collection_member_id
where m.collection_member_id is null or c.collection_member_id is null or m.collection_id != c.collection_id
union all
select m.collection_member_id, 'followers' as problem
from {{ ref('mart_collection_members') }} as m
inner join raw_followers as r on r.profile_key = m.profile_key
where m.audience is distinct from toUInt64(r.followers)
