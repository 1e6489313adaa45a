-- Weekly profile growth against staging: the audience and posts at each week's last scrape
-- (argMax over a one-element tuple, so a count hidden at that scrape is NULL, not an older
-- value: argMax alone skips NULLs) and, for Instagram, the posts published that week among the
-- scraped posts. Returns the profile-weeks that disagree (or are missing on either side).
with expected as (
    select
        concat('instagram:', toString(profile_id)) as profile_key,
        toMonday(scraped_at) as week_start,
        toNullable(argMax(followers, scraped_at)) as audience_end,
        argMax(posts_count, scraped_at) as posts_end
    from {{ ref('stg_instagram__account_snapshots') }}
    group by profile_id, week_start
    union all
    select
        concat('youtube:', channel_id) as profile_key,
        toMonday(scraped_at) as week_start,
        argMax(tuple(subscribers), scraped_at).1 as audience_end,
        argMax(video_count, scraped_at) as posts_end
    from {{ ref('stg_youtube__channel_snapshots') }}
    group by channel_id, week_start
),
published as (
    select concat('instagram:', toString(profile_id)) as profile_key, toMonday(posted_at) as week_start, count() as posts
    from {{ ref('stg_instagram__posts') }}
    where post_id in (select post_id from {{ ref('stg_instagram__post_snapshots') }})
    group by profile_id, week_start
),
mart as (
    select * from {{ ref('mart_growth_profile_weekly') }}
)
select e.profile_key as profile_key, e.week_start as week_start, 'audience or posts differ' as problem
from expected as e
full join mart as m on m.profile_key = e.profile_key and m.week_start = e.week_start
where m.profile_key is null or e.profile_key is null
   or m.audience_end is distinct from e.audience_end or m.posts_end != e.posts_end
union all
select m.profile_key as profile_key, m.week_start as week_start, 'posts published differ' as problem
from mart as m
left join published as p on p.profile_key = m.profile_key and p.week_start = m.week_start
where m.platform = 'instagram' and m.posts_published != coalesce(p.posts, 0)
