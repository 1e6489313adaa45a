{{ config(materialized='table', order_by='profile_id', tags=['core']) }}
-- One row per Instagram account: the numbers its profile page shows. Latest counts come from
-- int_instagram__profiles (latest()); post metrics average the account's last N posts
-- (var engagement_posts, 12) whose latest snapshot we hold; posting frequency counts posts
-- published in the 30 days before the as-of time (both from int_instagram__profile_post_stats).
-- A full rebuild on every run, but a join of two per-profile tables: the incremental models
-- upstream do the work, and a table rebuilt whole is swapped in atomically for the sync.
with profiles as (
    select * from {{ ref('int_instagram__profiles') }}
),
post_stats as (
    select * from {{ ref('int_instagram__profile_post_stats') }}
)
select
    toInt64(p.profile_id) as profile_id,
    toString(p.profile_key) as profile_key,
    toString(p.username) as username,
    p.full_name as full_name,
    toLowCardinality(toNullable(toString(p.category))) as category,
    toLowCardinality(toNullable(toString(p.country))) as country,
    toLowCardinality(toNullable(toString(p.language))) as language,
    toInt64(p.followers) as followers,
    toInt64(p.following) as following,
    toInt64(p.posts_count) as posts_count,
    p.is_verified as is_verified,
    p.is_private as is_private,
    p.is_business as is_business,
    toBool(p.is_deleted) as is_deleted,
    toInt32(coalesce(ps.posts_measured, 0)) as posts_measured,
    toNullable(toFloat64({{ safe_divide('ps.avg_interactions', 'p.followers') }})) as engagement_rate,
    toNullable(toFloat64(ps.avg_likes)) as avg_likes,
    toNullable(toFloat64(ps.avg_comments)) as avg_comments,
    toNullable(toFloat64(ps.avg_views)) as avg_views,
    toNullable(toFloat64(ps.median_likes)) as median_likes,
    toNullable(toFloat64(ps.median_comments)) as median_comments,
    toNullable(toFloat64(ps.comment_like_ratio)) as comment_like_ratio,
    toNullable(toFloat64(ps.video_share)) as video_share,
    toNullable(toFloat64(ps.paid_partnership_share)) as paid_partnership_share,
    toNullable(toFloat64(ps.avg_hashtags_per_post)) as avg_hashtags_per_post,
    toInt32(coalesce(ps.posts_last_30d, 0)) as posts_last_30d,
    toFloat64(coalesce(ps.posts_last_30d, 0)) * 7 / 30 as posts_per_week,
    toNullable(toInt64(p.followers) - toInt64(p.followers_7d_ago)) as follower_growth_7d,
    toNullable(toInt64(p.followers) - toInt64(p.followers_30d_ago)) as follower_growth_30d,
    toNullable(toFloat64({{ growth_pct('p.followers', 'p.followers_7d_ago') }})) as follower_growth_7d_pct,
    toNullable(toFloat64({{ growth_pct('p.followers', 'p.followers_30d_ago') }})) as follower_growth_30d_pct,
    toNullable(toFloat64({{ safe_divide('p.followers', 'p.following') }})) as follower_following_ratio,
    p.last_scraped_at as last_scraped_at,
    {{ as_of(ref('int_instagram__profiles'), 'as_of') }} as as_of
from profiles as p
left join post_stats as ps on ps.profile_id = p.profile_id
