{{ config(order_by='(platform, profile_key, week_start)', partition_by='toYYYYMM(week_start)', tags=['growth']) }}
-- Weekly growth per profile on every platform: the audience at the last scrape of each week
-- (argMax), its change from the previous week with a scrape, and the weekly change in posts.
with weekly as (
    select
        'instagram' as platform,
        concat('instagram:', toString(profile_id)) as profile_key,
        toMonday(scraped_at) as week_start,
        toNullable(argMax(followers, scraped_at)) as audience_end,
        argMax(posts_count, scraped_at) as posts_end,
        count() as snapshots
    from {{ ref('stg_instagram__account_snapshots') }}
    group by profile_id, week_start
    union all
    select
        'youtube' as platform,
        concat('youtube:', channel_id) as profile_key,
        toMonday(scraped_at) as week_start,
        argMax(subscribers, scraped_at) as audience_end,
        argMax(video_count, scraped_at) as posts_end,
        count() as snapshots
    from {{ ref('stg_youtube__channel_snapshots') }}
    group by channel_id, week_start
),
with_previous as (
    select
        *,
        lagInFrame(toNullable(audience_end)) over w as audience_previous,
        lagInFrame(toNullable(posts_end)) over w as posts_previous
    from weekly
    window w as (partition by profile_key order by week_start rows between unbounded preceding and current row)
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toDate(week_start) as week_start,
    toNullable(toUInt64(audience_end)) as audience_end,
    toNullable(toInt64(audience_end) - toInt64(audience_previous)) as audience_change,
    toNullable(toFloat64({{ growth_pct('audience_end', 'audience_previous') }})) as audience_change_pct,
    toUInt64(posts_end) as posts_end,
    toNullable(toInt64(posts_end) - toInt64(posts_previous)) as posts_change,
    toUInt64(snapshots) as snapshots
from with_previous
