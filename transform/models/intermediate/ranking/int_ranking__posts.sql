{{ config(materialized='table', order_by='(platform, profile_key, posted_at, post_key)', tags=['profile-ranking']) }}
-- Every Instagram post and YouTube video published in the lookback window before as_of (var
-- ranking_lookback_days) with the creator's dimensions, its engagement and engagement per hour
-- of age (at its latest scrape), the gap since the creator's previous post, and the creator's
-- baseline: the median engagement of their previous `baseline_posts` posts. The one place the
-- ranking marts (top, trending, viral posts) and the creator stats (cadence, consistency) read
-- posts from. Refreshed by the profile-ranking tier (every 2 h); the post-ranking tier reads it.
{% set lookback = var('ranking_lookback_days') %}
{% set baseline_posts = var('baseline_posts') %}
{% set baseline_min_posts = var('baseline_min_posts') %}
with ig_as_of as (
    select {{ as_of(ref('int_instagram__profiles'), 'as_of') }} as as_of
),
yt_as_of as (
    select {{ as_of(ref('int_youtube__channels'), 'as_of') }} as as_of
),
posts as (
    select
        'instagram' as platform,
        concat('instagram:', toString(p.post_id)) as post_key,
        a.profile_key as profile_key,
        a.username as handle,
        coalesce(toString(a.category), 'unknown') as category,
        coalesce(toString(a.country), 'unknown') as country,
        p.posted_at as posted_at,
        toString(p.media_type) as media_type,
        p.likes as likes,
        p.comments as comments,
        p.views as views,
        toNullable(toUInt64(a.followers)) as audience,
        {{ engagement_rate('p.likes', 'p.comments', 'a.followers') }} as engagement_rate,
        p.last_scraped_at as last_scraped_at,
        (select as_of from ig_as_of) as as_of
    from {{ post_facts() }} as p
    inner join {{ ref('int_instagram__profiles') }} as a on a.profile_id = p.profile_id
    where p.posted_at > (select as_of from ig_as_of) - interval {{ lookback }} day and not a.is_deleted
    union all
    select
        'youtube' as platform,
        concat('youtube:', v.video_id) as post_key,
        c.profile_key as profile_key,
        c.title as handle,
        coalesce(toString(c.category), 'unknown') as category,
        coalesce(toString(c.country), 'unknown') as country,
        v.published_at as posted_at,
        if(v.is_short, 'short', 'video') as media_type,
        v.likes as likes,
        v.comments as comments,
        toNullable(v.views) as views,
        toNullable(toUInt64(c.subscribers)) as audience,
        {{ engagement_rate('v.likes', 'v.comments', 'v.views') }} as engagement_rate,
        v.last_scraped_at as last_scraped_at,
        (select as_of from yt_as_of) as as_of
    from {{ ref('int_youtube__video_metrics') }} as v
    inner join {{ ref('int_youtube__channels') }} as c on c.channel_id = v.channel_id
    where v.published_at > (select as_of from yt_as_of) - interval {{ lookback }} day
),
measured as (
    select
        *,
        toUInt64(coalesce(likes, 0) + coalesce(comments, 0)) as engagement,
        -- hours from publication to the scrape the metrics come from (at least one)
        greatest(dateDiff('second', posted_at, last_scraped_at) / 3600, 1) as age_hours
    from posts
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(post_key) as post_key,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(category)) as category,
    toLowCardinality(toString(country)) as country,
    posted_at,
    toMonday(posted_at) as week_start,
    toLowCardinality(toString(media_type)) as media_type,
    toNullable(toUInt64(likes)) as likes,
    toNullable(toUInt64(comments)) as comments,
    toNullable(toUInt64(views)) as views,
    audience,
    engagement,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toFloat64(age_hours) as age_hours,
    toFloat64(engagement / age_hours) as engagement_per_hour,
    toFloat64(dateDiff('second', posted_at, as_of) / 3600) as hours_since_posted,
    last_scraped_at,
    -- the creator's posting rhythm: gap since the previous post in the window, recency order
    toNullable(if(row_number() over by_time = 1, null,
        dateDiff('second', lagInFrame(posted_at) over by_time, posted_at) / 3600)) as hours_since_previous_post,
    -- newest = 1, from the same window as the gaps (one sort of the posts, not two)
    toUInt64(count() over by_profile - row_number() over by_time + 1) as recency_index,
    -- the creator's baseline: median engagement of the previous posts (NULL with too few)
    toUInt64(count() over previous) as baseline_posts,
    toNullable(if(count() over previous < {{ baseline_min_posts }}, null,
        toFloat64(quantileExact(0.5)(engagement) over previous))) as baseline_engagement,
    toNullable(if(count() over previous < {{ baseline_min_posts }}, null,
        {{ safe_divide('engagement', 'quantileExact(0.5)(engagement) over previous') }})) as engagement_vs_baseline,
    as_of
from measured
window
    by_profile as (partition by profile_key),
    by_time as (partition by profile_key order by posted_at, post_key rows between unbounded preceding and current row),
    previous as (partition by profile_key order by posted_at, post_key rows between {{ baseline_posts }} preceding and 1 preceding)
