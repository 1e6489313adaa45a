-- Tier migration against staging: per platform and week, the moves add up to the profiles
-- scraped that week that had been scraped in an earlier week, and each move's tiers follow
-- from the audience at the two weeks' last scrapes (NULL, tier unknown, when that scrape hid it:
-- argMax over a one-element tuple keeps the NULL argMax alone would skip). Returns the weeks
-- that differ.
with weekly as (
    select 'instagram' as platform, profile_id as id, toMonday(scraped_at) as week_start, toNullable(argMax(followers, scraped_at)) as audience
    from {{ ref('stg_instagram__account_snapshots') }}
    group by profile_id, week_start
    union all
    select 'youtube' as platform, cityHash64(channel_id) as id, toMonday(scraped_at) as week_start, argMax(tuple(subscribers), scraped_at).1 as audience
    from {{ ref('stg_youtube__channel_snapshots') }}
    group by channel_id, week_start
),
moves as (
    select
        platform,
        week_start,
        {{ audience_tier_of('lagInFrame(audience) over (partition by platform, id order by week_start rows between unbounded preceding and current row)') }} as from_tier,
        {{ audience_tier_of('audience') }} as to_tier,
        row_number() over (partition by platform, id order by week_start) as nth
    from weekly
),
expected as (
    select platform, week_start, from_tier, to_tier, count() as profiles
    from moves
    where nth > 1
    group by platform, week_start, from_tier, to_tier
)
select e.platform, e.week_start, e.from_tier, e.to_tier, e.profiles as expected, m.profiles as found
from expected as e
full join {{ ref('mart_growth_tier_migration') }} as m
    on m.platform = e.platform and m.week_start = e.week_start and m.from_tier = e.from_tier and m.to_tier = e.to_tier
where m.profiles is distinct from e.profiles
