{{ config(order_by='(platform, profile_key, post_key)', tags=['post-ranking']) }}
-- Ranks of the posts and videos published in the 30 days before as_of: engagement per
-- follower (Instagram) or per view (YouTube), ranked across the platform and within the
-- profile. The heavy tier: it reads every recent post's latest metrics.
with ig_as_of as (
    select any(as_of) as as_of from {{ ref('int_instagram__profiles') }}
),
yt_as_of as (
    select any(as_of) as as_of from {{ ref('int_youtube__channels') }}
),
posts as (
    select
        'instagram' as platform,
        concat('instagram:', toString(p.post_id)) as post_key,
        concat('instagram:', toString(p.profile_id)) as profile_key,
        p.posted_at as posted_at,
        toString(p.media_type) as media_type,
        p.likes as likes,
        p.comments as comments,
        p.views as views,
        {{ engagement_rate('p.likes', 'p.comments', 'a.followers') }} as engagement_rate
    from {{ ref('int_instagram__post_metrics') }} as p final
    inner join {{ ref('int_instagram__profiles') }} as a on a.profile_id = p.profile_id
    where p.posted_at > (select as_of from ig_as_of) - interval 30 day and not a.is_deleted
    union all
    select
        'youtube' as platform,
        concat('youtube:', v.video_id) as post_key,
        concat('youtube:', v.channel_id) as profile_key,
        v.published_at as posted_at,
        if(v.is_short, 'short', 'video') as media_type,
        v.likes as likes,
        v.comments as comments,
        toNullable(v.views) as views,
        {{ engagement_rate('v.likes', 'v.comments', 'v.views') }} as engagement_rate
    from {{ ref('int_youtube__video_metrics') }} as v
    where v.published_at > (select as_of from yt_as_of) - interval 30 day
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(post_key) as post_key,
    toString(profile_key) as profile_key,
    posted_at,
    toLowCardinality(toString(media_type)) as media_type,
    toNullable(toUInt64(likes)) as likes,
    toNullable(toUInt64(comments)) as comments,
    toNullable(toUInt64(views)) as views,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    if(engagement_rate is null, null, toUInt64(rank() over (partition by platform, isNull(engagement_rate) order by engagement_rate desc))) as platform_rank,
    if(engagement_rate is null, null, toUInt64(rank() over (partition by profile_key, isNull(engagement_rate) order by engagement_rate desc))) as profile_rank
from posts
