-- The leaderboard history against the staging snapshots: a profile's audience on a day is the
-- followers / subscribers of its latest scrape on or before that day, NULL when that scrape hid
-- the count (recomputed here with a plain join and argMax over a one-element tuple, which keeps
-- the NULL argMax alone would skip; not the model's ASOF join). Returns the days that disagree.
with scrapes as (
    select concat('instagram:', toString(profile_id)) as profile_key, scraped_at, toNullable(followers) as audience
    from {{ ref('stg_instagram__account_snapshots') }}
    union all
    select concat('youtube:', channel_id) as profile_key, scraped_at, subscribers as audience
    from {{ ref('stg_youtube__channel_snapshots') }}
),
expected as (
    select h.profile_key as profile_key, h.day as day, any(h.audience) as audience, argMax(tuple(s.audience), s.scraped_at).1 as recomputed
    from {{ ref('mart_leaderboard_history') }} as h
    inner join scrapes as s on s.profile_key = h.profile_key
    where toDate(s.scraped_at) <= h.day
    group by h.profile_key, h.day
)
select profile_key, day, audience, recomputed
from expected
where audience is distinct from recomputed
