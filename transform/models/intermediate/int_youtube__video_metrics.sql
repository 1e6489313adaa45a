{{ config(materialized='table', order_by='(channel_id, video_id)', tags=['core']) }}
-- One row per video with its latest views, likes and comments (argMax on the scrape time).
select
    s.channel_id as channel_id,
    s.video_id as video_id,
    any(v.published_at) as published_at,
    any(v.is_short) as is_short,
    any(v.duration_seconds) as duration_seconds,
    argMax(s.views, s.scraped_at) as views,
    argMax(s.likes, s.scraped_at) as likes,
    argMax(s.comments, s.scraped_at) as comments,
    max(s.scraped_at) as last_scraped_at
from {{ ref('stg_youtube__video_snapshots') }} as s
inner join {{ ref('stg_youtube__videos') }} as v on v.video_id = s.video_id
group by s.channel_id, s.video_id
