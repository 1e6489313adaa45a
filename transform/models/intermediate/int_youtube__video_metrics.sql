{{ config(materialized='table', order_by='(channel_id, video_id)', tags=['core']) }}
-- One row per video with its latest views, likes and comments (latest() on the scrape time:
-- likes hidden or comments disabled since are NULL, not their last visible count).
select
    s.channel_id as channel_id,
    s.video_id as video_id,
    any(v.published_at) as published_at,
    any(v.is_short) as is_short,
    any(v.duration_seconds) as duration_seconds,
    {{ latest('s.views', 's.scraped_at') }} as views,
    {{ latest('s.likes', 's.scraped_at') }} as likes,
    {{ latest('s.comments', 's.scraped_at') }} as comments,
    max(s.scraped_at) as last_scraped_at
from {{ ref('stg_youtube__video_snapshots') }} as s
inner join {{ ref('stg_youtube__videos') }} as v on v.video_id = s.video_id
group by s.channel_id, s.video_id
