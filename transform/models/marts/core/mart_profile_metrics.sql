{{ config(order_by='(platform, profile_key)', tags=['core']) }}
-- One row per profile on any platform, in one shape: what the app's cross-platform profile
-- list shows. Audience is followers (Instagram) or subscribers (YouTube); engagement and
-- averages are per post or per video; is_tracked marks the profiles Coffee follows.
with unified as (
    select
        'instagram' as platform,
        profile_key,
        toString(profile_id) as platform_id,
        username as handle,
        category,
        country,
        language,
        toNullable(followers) as audience,
        posts_count,
        engagement_rate,
        avg_likes,
        avg_comments,
        avg_views,
        posts_per_week,
        follower_growth_7d as audience_growth_7d,
        follower_growth_30d as audience_growth_30d,
        follower_growth_30d_pct as audience_growth_30d_pct,
        is_deleted,
        last_scraped_at
    from {{ ref('mart_instagram_account_metrics') }}
    union all
    select
        'youtube' as platform,
        profile_key,
        channel_id as platform_id,
        title as handle,
        category,
        country,
        language,
        subscribers as audience,
        video_count as posts_count,
        engagement_rate,
        avg_likes,
        avg_comments,
        avg_views,
        uploads_per_week as posts_per_week,
        subscriber_growth_7d as audience_growth_7d,
        subscriber_growth_30d as audience_growth_30d,
        subscriber_growth_30d_pct as audience_growth_30d_pct,
        false as is_deleted,
        last_scraped_at
    from {{ ref('mart_youtube_channel_metrics') }}
)
select
    toLowCardinality(toString(u.platform)) as platform,
    toString(u.profile_key) as profile_key,
    toString(u.platform_id) as platform_id,
    toString(u.handle) as handle,
    toLowCardinality(toNullable(toString(u.category))) as category,
    toLowCardinality(toNullable(toString(u.country))) as country,
    toLowCardinality(toNullable(toString(u.language))) as language,
    toNullable(toInt64(u.audience)) as audience,
    toString(multiIf(u.audience is null, 'unknown', u.audience < 10000, 'nano', u.audience < 100000, 'micro', u.audience < 1000000, 'macro', 'mega')) as audience_tier,
    toInt64(u.posts_count) as posts_count,
    toNullable(toFloat64(u.engagement_rate)) as engagement_rate,
    toNullable(toFloat64(u.avg_likes)) as avg_likes,
    toNullable(toFloat64(u.avg_comments)) as avg_comments,
    toNullable(toFloat64(u.avg_views)) as avg_views,
    toFloat64(u.posts_per_week) as posts_per_week,
    toNullable(toInt64(u.audience_growth_7d)) as audience_growth_7d,
    toNullable(toInt64(u.audience_growth_30d)) as audience_growth_30d,
    toNullable(toFloat64(u.audience_growth_30d_pct)) as audience_growth_30d_pct,
    toBool(u.is_deleted) as is_deleted,
    toBool(t.tracked_profile_id is not null) as is_tracked,
    u.last_scraped_at as last_scraped_at
from unified as u
left join {{ ref('stg_coffee__tracked_profiles') }} as t on t.profile_key = u.profile_key
