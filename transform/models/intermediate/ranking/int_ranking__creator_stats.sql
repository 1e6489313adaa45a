{{ config(materialized='table', order_by='profile_key', tags=['profile-ranking']) }}
-- One row per creator with posts in the lookback window of int_ranking__posts: posting cadence
-- (posts per window, gaps between posts, days since the last post) and, over the creator's last
-- `consistency_posts` posts, the regularity of the cadence and the stability of engagement
-- (coefficients of variation) that make the consistency score, and the comments-to-likes ratio.
-- Shared by the cadence, consistency, engagement-quality and creator-score models.
{% set last_n = var('consistency_posts') %}
with posts as (
    select * from {{ ref('int_ranking__posts') }}
),
stats as (
    select
        profile_key,
        any(platform) as platform,
        any(as_of) as window_end,
        toUInt64(countIf(posted_at > as_of - interval 7 day)) as posts_last_7d,
        toUInt64(countIf(posted_at > as_of - interval 30 day)) as posts_last_30d,
        toUInt64(countIf(posted_at <= as_of - interval 30 day and posted_at > as_of - interval 60 day)) as posts_previous_30d,
        toUInt64(count()) as posts_lookback,
        max(posted_at) as last_posted_at,
        max(hours_since_previous_post) as max_gap_hours_lookback,
        -- the last N posts
        toUInt64(countIf(recency_index <= {{ last_n }})) as posts_measured,
        quantileExactIf(0.5)(hours_since_previous_post, recency_index <= {{ last_n }}) as median_gap_hours,
        avgIf(hours_since_previous_post, recency_index <= {{ last_n }}) as mean_gap_hours,
        stddevPopIf(hours_since_previous_post, recency_index <= {{ last_n }}) as stddev_gap_hours,
        avgIf(toFloat64(engagement), recency_index <= {{ last_n }}) as mean_engagement,
        stddevPopIf(toFloat64(engagement), recency_index <= {{ last_n }}) as stddev_engagement,
        sumIf(likes, recency_index <= {{ last_n }}) as likes_measured,
        sumIf(comments, recency_index <= {{ last_n }}) as comments_measured
    from posts
    group by profile_key
)
select
    toString(profile_key) as profile_key,
    toLowCardinality(toString(platform)) as platform,
    posts_last_7d,
    posts_last_30d,
    posts_previous_30d,
    posts_lookback,
    last_posted_at,
    toNullable(toFloat64(max_gap_hours_lookback)) as max_gap_hours_lookback,
    posts_measured,
    toNullable(toFloat64(median_gap_hours)) as median_gap_hours,
    toNullable(toFloat64(mean_gap_hours)) as mean_gap_hours,
    toNullable(toFloat64({{ safe_divide('stddev_gap_hours', 'mean_gap_hours') }})) as gap_cv,
    toNullable(toFloat64(mean_engagement)) as mean_engagement,
    toNullable(toFloat64({{ safe_divide('stddev_engagement', 'mean_engagement') }})) as engagement_cv,
    toNullable(toUInt64(likes_measured)) as likes_measured,
    toNullable(toUInt64(comments_measured)) as comments_measured,
    toNullable(toFloat64({{ safe_divide('comments_measured', 'likes_measured') }})) as comment_like_ratio,
    -- 1 = a perfectly regular cadence and steady engagement; each half falls as 1 / (1 + CV)
    toNullable(toFloat64(if(posts_measured < 3 or gap_cv is null or engagement_cv is null, null,
        0.5 / (1 + gap_cv) + 0.5 / (1 + engagement_cv)))) as consistency_score,
    window_end as as_of
from stats
