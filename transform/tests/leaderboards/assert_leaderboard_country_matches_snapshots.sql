-- The per-country leaderboard against the staging snapshots: every listed profile's audience is
-- its latest scrape's followers / subscribers, and each country's first place holds the largest
-- latest audience among that country's non-deleted profiles. Returns the disagreements.
-- argMax over a one-element tuple keeps a NULL at the newest row (a hidden subscriber count, a
-- success's empty error class); the country is deliberately plain argMax, which skips NULLs: the
-- model keeps the last known country when Beat fails to infer it on one scrape.
with latest as (
    select
        concat('instagram:', toString(profile_id)) as profile_key,
        coalesce(toString(argMax(country, scraped_at)), 'unknown') as country,
        toNullable(argMax(followers, scraped_at)) as audience
    from {{ ref('stg_instagram__account_snapshots') }}
    where profile_id not in (select profile_id from {{ ref('stg_beat__instagram_profile_requests') }} group by profile_id having argMax(tuple(error_class), started_at).1 = 'NotFound')
    group by profile_id
    union all
    select
        concat('youtube:', s.channel_id) as profile_key,
        coalesce(toString(any(c.country)), 'unknown') as country,
        argMax(tuple(s.subscribers), s.scraped_at).1 as audience
    from {{ ref('stg_youtube__channel_snapshots') }} as s
    inner join {{ ref('stg_youtube__channels') }} as c on c.channel_id = s.channel_id
    group by s.channel_id
),
board as (
    select * from {{ ref('mart_leaderboard_country') }}
)
select 'audience differs' as problem, b.profile_key as profile_key, b.dimension_value as country
from board as b
left join latest as l on l.profile_key = b.profile_key
where l.profile_key is null or l.audience is distinct from b.audience
union all
select 'first place is not the largest' as problem, any(b.profile_key) as profile_key, b.dimension_value as country
from board as b
inner join (select country, max(audience) as largest from latest group by country) as m on m.country = b.dimension_value
where b.list_rank = 1
group by b.dimension_value
having max(b.audience) is distinct from any(m.largest)
