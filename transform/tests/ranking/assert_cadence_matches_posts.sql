-- Posts in the last 30 days per Instagram creator in mart_creator_posting_cadence equal a count
-- of the creator's posts in staging (latest metadata, publication time after as_of - 30 days).
with as_of as (
    select any(as_of) as as_of from {{ ref('int_instagram__profiles') }}
),
counted as (
    select concat('instagram:', toString(profile_id)) as profile_key, count() as posts_last_30d
    from {{ ref('stg_instagram__posts') }}
    where posted_at > (select as_of from as_of) - interval 30 day
    group by profile_id
)
select c.profile_key, c.posts_last_30d, s.posts_last_30d
from {{ ref('mart_creator_posting_cadence') }} as c
left join counted as s on s.profile_key = c.profile_key
where c.platform = 'instagram' and c.posts_last_30d != coalesce(s.posts_last_30d, 0)
