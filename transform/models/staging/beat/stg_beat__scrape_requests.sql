-- One scrape request, successful or not. An append-only log (plain MergeTree): no dedupe.
select
    request_id,
    source,
    endpoint,
    target_id,
    worker,
    started_at,
    finished_at,
    status,
    status = 'success' as is_success,
    http_status,
    error_class,
    toUInt64(latency_ms) as latency_ms,
    _ingested_at as ingested_at
from {{ source('beat', 'scrape_requests') }}
