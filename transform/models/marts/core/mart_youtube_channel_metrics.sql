{{ config(order_by='channel_id', tags=['core']) }}
-- One row per YouTube channel: subscribers, views, engagement over its last N videos (views,
-- likes and comments per view) and upload cadence over the 30 days before the as-of time.
{% set last_n = var('engagement_posts') %}
with channels as (
    select * from {{ ref('int_youtube__channels') }}
),
recent_videos as (
    select *
    from {{ ref('int_youtube__video_metrics') }}
    order by channel_id, published_at desc
    limit {{ last_n }} by channel_id
),
video_stats as (
    select
        channel_id,
        toUInt64(count()) as videos_measured,
        avg(views) as avg_views,
        avg(likes) as avg_likes,
        avg(comments) as avg_comments,
        avg({{ engagement_rate('likes', 'comments', 'views') }}) as engagement_rate,
        avg(toFloat64(is_short)) as shorts_share
    from recent_videos
    group by channel_id
),
cadence as (
    select
        channel_id,
        toUInt64(countIf(published_at > {{ as_of(ref('int_youtube__channels'), 'as_of') }} - interval 30 day)) as uploads_last_30d
    from {{ ref('int_youtube__video_metrics') }}
    group by channel_id
)
select
    toString(c.channel_id) as channel_id,
    toString(c.profile_key) as profile_key,
    toString(c.title) as title,
    toLowCardinality(toNullable(toString(c.category))) as category,
    toLowCardinality(toNullable(toString(c.country))) as country,
    toLowCardinality(toNullable(toString(c.language))) as language,
    c.hidden_subscriber_count as hidden_subscriber_count,
    toNullable(toInt64(c.subscribers)) as subscribers,
    toInt64(c.total_views) as total_views,
    toInt64(c.video_count) as video_count,
    toInt32(coalesce(v.videos_measured, 0)) as videos_measured,
    toNullable(toFloat64(v.avg_views)) as avg_views,
    toNullable(toFloat64(v.avg_likes)) as avg_likes,
    toNullable(toFloat64(v.avg_comments)) as avg_comments,
    toNullable(toFloat64(v.engagement_rate)) as engagement_rate,
    toNullable(toFloat64(v.shorts_share)) as shorts_share,
    toInt32(coalesce(u.uploads_last_30d, 0)) as uploads_last_30d,
    toFloat64(coalesce(u.uploads_last_30d, 0)) * 7 / 30 as uploads_per_week,
    toNullable(toInt64(c.subscribers) - toInt64(c.subscribers_7d_ago)) as subscriber_growth_7d,
    toNullable(toInt64(c.subscribers) - toInt64(c.subscribers_30d_ago)) as subscriber_growth_30d,
    toNullable(toFloat64({{ growth_pct('c.subscribers', 'c.subscribers_30d_ago') }})) as subscriber_growth_30d_pct,
    toNullable(toInt64(c.total_views) - toInt64(c.total_views_30d_ago)) as views_last_30d,
    toNullable(toInt64(c.estimated_monthly_views)) as estimated_monthly_views,
    c.last_scraped_at as last_scraped_at,
    {{ as_of(ref('int_youtube__channels'), 'as_of') }} as as_of
from channels as c
left join video_stats as v on v.channel_id = c.channel_id
left join cadence as u on u.channel_id = c.channel_id
