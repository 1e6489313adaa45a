-- One video seen by one scrape, (video_id, scraped_at); repeats collapse with FINAL.
select
    channel_id,
    video_id,
    scraped_at,
    request_id,
    views,
    likes,
    comments,
    _ingested_at as ingested_at
from {{ source('youtube', 'video_snapshots') }} final
