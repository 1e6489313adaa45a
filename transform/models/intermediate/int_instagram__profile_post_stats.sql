{{ config(
    materialized='incremental',
    incremental_strategy='legacy',
    unique_key='profile_id',
    order_by='profile_id',
    on_schema_change='fail',
    tags=['core'],
    pre_hook="{{ reset_if_source_rewound(ref('int_instagram__post_metrics'), 'ingested_at', 'ingested_at') }}",
) }}
-- One row per Instagram profile with posts: what mart_instagram_account_metrics shows of them.
-- Averages cover the profile's last N posts (var engagement_posts) whose latest snapshot we hold;
-- the cadence counts posts published in the 30 days before as_of (int_instagram__profiles).
-- avg_interactions is the mean likes + comments (hidden counts 0): the mart divides it by the
-- followers, which are the same for every post of a profile.
--
-- Incremental per profile (rows replaced by profile_id, macros/incremental_keys.sql), so that a
-- run reads the post facts of the touched profiles only (with FINAL, on the facts' primary key)
-- instead of all of them: profiles with posts recomputed since the watermark (the newest
-- ingested_at of the post facts this table holds), and profiles with a post that left the
-- 30-day window as as_of moved.
{% set last_n = var('engagement_posts') %}
{% set as_of_sql = as_of(ref('int_instagram__profiles'), 'as_of') %}
with
{% if is_incremental() %}
touched as (
    {{ keys_ingested_since(ref('int_instagram__post_metrics'), 'profile_id', 'ingested_at', source_column='ingested_at') }}
    union distinct
    {{ keys_leaving_window(ref('int_instagram__post_metrics'), 'profile_id', 'posted_at', 30, as_of_sql) }}
),
{% endif %}
posts as (
    select *
    from {{ post_facts() }}
    {% if is_incremental() %}where profile_id in (select profile_id from touched){% endif %}
),
recent_posts as (
    select *
    from posts
    order by profile_id, posted_at desc
    limit {{ last_n }} by profile_id
),
post_stats as (
    select
        profile_id,
        toUInt64(count()) as posts_measured,
        avg(coalesce(likes, 0) + coalesce(comments, 0)) as avg_interactions,
        avg(likes) as avg_likes,
        avg(comments) as avg_comments,
        avg(views) as avg_views,
        quantileExact(0.5)(likes) as median_likes,
        quantileExact(0.5)(comments) as median_comments,
        {{ safe_divide('sum(comments)', 'sum(likes)') }} as comment_like_ratio,
        avg(toFloat64(is_video)) as video_share,
        avg(toFloat64(is_paid_partnership)) as paid_partnership_share,
        avg(toFloat64(hashtag_count)) as avg_hashtags_per_post
    from recent_posts
    group by profile_id
),
cadence as (
    select
        profile_id,
        toUInt64(countIf(posted_at > {{ as_of_sql }} - interval 30 day)) as posts_last_30d,
        max(ingested_at) as ingested_at
    from posts
    group by profile_id
)
select
    ps.profile_id as profile_id,
    ps.posts_measured as posts_measured,
    ps.avg_interactions as avg_interactions,
    ps.avg_likes as avg_likes,
    ps.avg_comments as avg_comments,
    ps.avg_views as avg_views,
    ps.median_likes as median_likes,
    ps.median_comments as median_comments,
    ps.comment_like_ratio as comment_like_ratio,
    ps.video_share as video_share,
    ps.paid_partnership_share as paid_partnership_share,
    ps.avg_hashtags_per_post as avg_hashtags_per_post,
    c.posts_last_30d as posts_last_30d,
    c.ingested_at as ingested_at,
    {{ as_of_sql }} as as_of
from post_stats as ps
inner join cadence as c on c.profile_id = ps.profile_id
