{{ config(order_by='(platform, profile_key)', tags=['profile-ranking']) }}
-- Posting cadence per creator: posts in the last 7 and 30 days and the 30 days before, the
-- typical and the longest gap between posts, days since the last post, and a cadence status.
-- Campaign managers read it to spot creators who slowed down or went quiet before booking them.
with cadence as (
    select
        sc.platform as platform,
        sc.profile_key as profile_key,
        sc.handle as handle,
        sc.category as category,
        sc.is_private as is_private,
        coalesce(st.posts_last_7d, 0) as posts_last_7d,
        coalesce(st.posts_last_30d, 0) as posts_last_30d,
        coalesce(st.posts_previous_30d, 0) as posts_previous_30d,
        st.median_gap_hours as median_gap_hours,
        st.max_gap_hours_lookback as max_gap_hours,
        st.last_posted_at as last_posted_at,
        -- the platform's as_of, also for creators without posts in the window
        max(st.as_of) over (partition by sc.platform) as as_of
    from {{ ref('int_ranking__creator_scores') }} as sc
    left join {{ ref('int_ranking__creator_stats') }} as st on st.profile_key = sc.profile_key
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(category)) as category,
    toInt32(posts_last_7d) as posts_last_7d,
    toInt32(posts_last_30d) as posts_last_30d,
    toInt32(posts_previous_30d) as posts_previous_30d,
    toFloat64(posts_last_30d * 7 / 30) as posts_per_week,
    toNullable(toFloat64({{ growth_pct('posts_last_30d', 'posts_previous_30d') }})) as cadence_change_pct,
    toNullable(toFloat64(median_gap_hours)) as median_gap_hours,
    toNullable(toFloat64(max_gap_hours)) as max_gap_hours,
    last_posted_at,
    toNullable(toInt64(dateDiff('day', last_posted_at, as_of))) as days_since_last_post,
    toLowCardinality(toString(multiIf(
        is_private, 'private',
        last_posted_at is null or last_posted_at <= as_of - interval 30 day, 'dormant',
        posts_last_30d * 2 < posts_previous_30d, 'slowing',
        posts_last_30d > posts_previous_30d * 1.5 and posts_previous_30d > 0, 'accelerating',
        'steady'))) as cadence_status,
    as_of
from cadence
