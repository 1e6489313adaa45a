-- Beat, the scraper: one row per request it made, successful or not (see docs/sources.md).

CREATE DATABASE IF NOT EXISTS raw_beat;

-- Grain: one row per scrape request. An append-only event log: plain MergeTree, monthly
-- partitions (retention drops whole months). ORDER BY (source, started_at) serves the
-- monitoring tier's reads: "the last N minutes of one source".
CREATE TABLE IF NOT EXISTS raw_beat.scrape_requests
(
    request_id    UInt64,
    source        LowCardinality(String),            -- instagram, youtube
    endpoint      LowCardinality(String),            -- profile, comments, channel
    target_id     String,                            -- profile id, post id or channel id
    worker        LowCardinality(String),
    started_at    DateTime64(3, 'UTC'),
    finished_at   DateTime64(3, 'UTC'),
    status        LowCardinality(String),            -- success, failure
    http_status   Nullable(UInt16),                  -- NULL when no response came back
    error_class   LowCardinality(Nullable(String)),  -- NULL on success
    latency_ms    UInt32,
    _ingested_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (source, started_at);
