{{ config(order_by='(platform, profile_key, day)', tags=['leaderboards']) }}
-- Leaderboard history: daily audience rank on the platform leaderboard, over the last
-- var leaderboard_history_days (30) days, of every profile on the platform top list on any of
-- them; a day's audience is the latest scrape on or before it (ASOF join), NULL (and unranked)
-- when that scrape hid the count. The app draws a profile's rank line on leaderboard and
-- profile pages from it.
{% set days = var('leaderboard_history_days') %}
{% set size = var('leaderboard_size') %}
with as_of as (
    select 'instagram' as platform, toDate({{ as_of(ref('int_instagram__profiles'), 'as_of') }}) as as_of_day
    union all
    select 'youtube' as platform, toDate({{ as_of(ref('int_youtube__channels'), 'as_of') }}) as as_of_day
),
daily as (
    -- the audience at each profile's last scrape of each day (latest: NULL when that scrape hid
    -- the count); a margin before the window gives its first days a value to carry forward
    select
        concat('instagram:', toString(profile_id)) as profile_key,
        toDate(scraped_at) as day,
        toNullable({{ latest('followers') }}) as audience
    from {{ ref('stg_instagram__account_snapshots') }}
    where scraped_at >= (select min(as_of_day) from as_of) - interval {{ days + 30 }} day
    group by profile_id, day
    union all
    select
        concat('youtube:', channel_id) as profile_key,
        toDate(scraped_at) as day,
        {{ latest('subscribers') }} as audience
    from {{ ref('stg_youtube__channel_snapshots') }}
    where scraped_at >= (select min(as_of_day) from as_of) - interval {{ days + 30 }} day
    group by channel_id, day
),
grid as (
    select p.profile_key as profile_key, p.platform as platform, p.handle as handle, a.as_of_day - offset as day
    from {{ ref('int_profiles__leaderboard_dimensions') }} as p
    inner join as_of as a on a.platform = p.platform
    array join range({{ days }}) as offset
),
filled as (
    select g.profile_key as profile_key, g.platform as platform, g.handle as handle, g.day as day, d.audience as audience
    from grid as g
    asof left join daily as d on d.profile_key = g.profile_key and g.day >= d.day
),
ranked as (
    select
        *,
        if(audience is null, null, rank() over (partition by platform, day, audience is null order by audience desc)) as audience_rank
    from filled
),
with_best as (
    select
        *,
        min(audience_rank) over (partition by profile_key) as best_rank,
        lagInFrame(audience_rank) over (partition by profile_key order by day rows between unbounded preceding and current row) as previous_rank
    from ranked
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toDate(assumeNotNull(day)) as day,
    toNullable(toInt64(audience)) as audience,
    toNullable(toInt32(audience_rank)) as audience_rank,
    toNullable(toInt64(previous_rank) - toInt64(audience_rank)) as rank_change_1d
from with_best
where best_rank <= {{ size }}
