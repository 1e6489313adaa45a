{{ config(materialized='table', order_by='(profile_key, posted_at)', tags=['collections']) }}
-- One row per post (Instagram) or video (YouTube) of a tracked profile, the profiles collections
-- are made of, in one shape: its latest likes, comments and views and its engagements
-- (likes + comments, hidden counts as 0). The content marts of collections and the conversion
-- of creator codes read it.
with tracked as (
    select profile_key from {{ ref('stg_coffee__tracked_profiles') }}
)
select
    'instagram' as platform,
    concat('instagram:', toString(profile_id)) as profile_key,
    concat('instagram:', toString(post_id)) as post_key,
    posted_at,
    media_type,
    is_paid_partnership,
    likes,
    comments,
    views,
    toUInt64(coalesce(likes, 0) + coalesce(comments, 0)) as engagements,
    last_scraped_at
from {{ post_facts() }}
where concat('instagram:', toString(profile_id)) in (select profile_key from tracked)
union all
select
    'youtube' as platform,
    concat('youtube:', channel_id) as profile_key,
    concat('youtube:', video_id) as post_key,
    published_at as posted_at,
    if(is_short, 'short', 'video') as media_type,
    false as is_paid_partnership,
    likes,
    comments,
    toNullable(views) as views,
    toUInt64(coalesce(likes, 0) + coalesce(comments, 0)) as engagements,
    last_scraped_at
from {{ ref('int_youtube__video_metrics') }}
where concat('youtube:', channel_id) in (select profile_key from tracked)
