-- Requests to YouTube's channel endpoint (channel, statistics and recent videos in one).
select
    request_id,
    target_id as channel_id,
    started_at,
    is_success,
    http_status,
    error_class,
    latency_ms
from {{ ref('stg_beat__scrape_requests') }}
where source = 'youtube' and endpoint = 'channel'
