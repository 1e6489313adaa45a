{{ config(materialized='table', order_by='(profile_key, week_start)', tags=['growth']) }}
-- One row per profile and ISO week with a scrape: the weekly audience and posts of
-- mart_weekly_growth, the posts published that week and their engagement, the profile's
-- current category and country, its audience tier at the week's end and at the previous week
-- with a scrape, and its cohort (the first week it was scraped). Every growth mart that
-- slices or compares weeks reads it.
-- Engagement of a week: posts published in it, at their latest scrape; (likes + comments) per
-- follower at the week's end (Instagram) or per view (YouTube), as mart_profile_metrics.
-- Posts published in a week without a scrape of the profile are not counted.
with weeks as (
    select * from {{ ref('mart_weekly_growth') }}
),
posts as (
    select
        concat('instagram:', toString(profile_id)) as profile_key,
        toMonday(posted_at) as week_start,
        count() as posts_published,
        avg(coalesce(likes, 0) + coalesce(comments, 0)) as avg_interactions,
        cast(null, 'Nullable(Float64)') as avg_view_engagement
    from {{ post_facts() }}
    group by profile_id, week_start
    union all
    select
        concat('youtube:', channel_id) as profile_key,
        toMonday(published_at) as week_start,
        count() as posts_published,
        cast(null, 'Nullable(Float64)') as avg_interactions,
        avg({{ engagement_rate('likes', 'comments', 'views') }}) as avg_view_engagement
    from {{ ref('int_youtube__video_metrics') }}
    group by channel_id, week_start
),
joined as (
    select
        w.platform as platform,
        w.profile_key as profile_key,
        p.handle as handle,
        p.category as category,
        p.country as country,
        w.week_start as week_start,
        w.audience_end as audience_end,
        w.audience_change as audience_change,
        w.audience_change_pct as audience_change_pct,
        w.posts_end as posts_end,
        w.posts_change as posts_change,
        coalesce(ps.posts_published, 0) as posts_published,
        if(w.platform = 'instagram', {{ safe_divide('ps.avg_interactions', 'w.audience_end') }}, ps.avg_view_engagement) as engagement_rate,
        {{ audience_tier_of('w.audience_end') }} as audience_tier,
        w.snapshots as snapshots
    from weeks as w
    left join {{ ref('mart_profile_metrics') }} as p on p.profile_key = w.profile_key
    left join posts as ps on ps.profile_key = w.profile_key and ps.week_start = w.week_start
),
with_history as (
    select
        *,
        lagInFrame(toNullable(audience_tier)) over w as audience_tier_previous,
        min(week_start) over (partition by profile_key) as cohort_week
    from joined
    window w as (partition by profile_key order by week_start rows between unbounded preceding and current row)
)
select
    toString(platform) as platform,
    toString(profile_key) as profile_key,
    toNullable(toString(handle)) as handle,
    toNullable(toString(category)) as category,
    toNullable(toString(country)) as country,
    toDate(week_start) as week_start,
    toUInt16(toISOYear(week_start)) as iso_year,
    toUInt8(toISOWeek(week_start)) as iso_week,
    toNullable(toUInt64(audience_end)) as audience_end,
    toNullable(toInt64(audience_change)) as audience_change,
    toNullable(toFloat64(audience_change_pct)) as audience_change_pct,
    toUInt64(posts_end) as posts_end,
    toNullable(toInt64(posts_change)) as posts_change,
    toUInt64(posts_published) as posts_published,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toString(audience_tier) as audience_tier,
    toNullable(toString(audience_tier_previous)) as audience_tier_previous,
    toDate(cohort_week) as cohort_week,
    toUInt16(intDiv(toDate(week_start) - toDate(cohort_week), 7)) as weeks_since_cohort,
    toUInt64(snapshots) as snapshots
from with_history
