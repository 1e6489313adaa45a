-- One successful channel scrape, (channel_id, scraped_at); repeats collapse with FINAL.
select
    channel_id,
    scraped_at,
    request_id,
    subscribers,
    views,
    toUInt64(video_count) as video_count,
    _ingested_at as ingested_at
from {{ source('youtube', 'channel_snapshots') }} final
