{{ config(order_by='(platform, profile_key, post_key)', tags=['post-ranking']) }}
-- Ranks of the posts and videos published in the var ranking_window_days (30) days before
-- as_of (from int_ranking__posts, the one place the ranking marts read posts from): engagement
-- per follower (Instagram) or per view (YouTube), ranked across the platform and within the
-- profile. The heavy tier: it reads every recent post's latest metrics.
with posts as (
    select *
    from {{ ref('int_ranking__posts') }}
    where hours_since_posted <= 24 * {{ var('ranking_window_days') }}
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(post_key) as post_key,
    toString(profile_key) as profile_key,
    posted_at,
    toLowCardinality(toString(media_type)) as media_type,
    toNullable(toInt64(likes)) as likes,
    toNullable(toInt64(comments)) as comments,
    toNullable(toInt64(views)) as views,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    if(engagement_rate is null, null, toInt64(rank() over (partition by platform, isNull(engagement_rate) order by engagement_rate desc))) as platform_rank,
    if(engagement_rate is null, null, toInt64(rank() over (partition by profile_key, isNull(engagement_rate) order by engagement_rate desc))) as profile_rank
from posts
