-- YouTube, as Beat's scrapes of the Data API deliver it: one `channel` request returns the
-- channel, its statistics and the statistics of its recent videos (see docs/sources.md).

CREATE DATABASE IF NOT EXISTS raw_youtube;

-- Grain: one row per channel, its latest observed metadata (version: the scrape time).
CREATE TABLE IF NOT EXISTS raw_youtube.channels
(
    channel_id                String,
    title                     String,
    description               Nullable(String),
    custom_url                Nullable(String),
    country                   LowCardinality(Nullable(String)),  -- set by the owner, often not
    default_language          LowCardinality(Nullable(String)),
    category                  LowCardinality(String),            -- the channel's main category
    published_at              DateTime64(3, 'UTC'),
    hidden_subscriber_count   Bool,
    scraped_at                DateTime64(3, 'UTC'),
    request_id                UInt64,
    _ingested_at              DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(scraped_at)
ORDER BY channel_id;

-- Grain: one row per successful channel scrape, (channel_id, scraped_at); repeats of the same
-- delivery collapse. Monthly partitions, history per channel together.
CREATE TABLE IF NOT EXISTS raw_youtube.channel_snapshots
(
    channel_id    String,
    scraped_at    DateTime64(3, 'UTC'),
    request_id    UInt64,
    subscribers   Nullable(UInt64),  -- NULL when the channel hides its subscriber count
    views         UInt64,
    video_count   UInt32,
    _ingested_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(scraped_at)
ORDER BY (channel_id, scraped_at);

-- Grain: one row per video, its latest observed metadata (version: the scrape time).
CREATE TABLE IF NOT EXISTS raw_youtube.videos
(
    channel_id        String,
    video_id          String,
    title             String,
    published_at      DateTime64(3, 'UTC'),
    duration_seconds  UInt32,
    category          LowCardinality(String),
    is_short          Bool,
    made_for_kids     Bool,
    tags              Array(String),
    default_language  LowCardinality(Nullable(String)),
    scraped_at        DateTime64(3, 'UTC'),
    _ingested_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(scraped_at)
PARTITION BY toYYYYMM(published_at)
ORDER BY (channel_id, video_id);

-- Grain: one row per video per scrape, (video_id, scraped_at): views, likes and comments as
-- they accumulate over the video's first weeks.
CREATE TABLE IF NOT EXISTS raw_youtube.video_snapshots
(
    channel_id    String,
    video_id      String,
    scraped_at    DateTime64(3, 'UTC'),
    request_id    UInt64,
    views         UInt64,
    likes         Nullable(UInt64),  -- NULL when the owner hides likes
    comments      Nullable(UInt64),  -- NULL when comments are disabled
    _ingested_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(scraped_at)
ORDER BY (channel_id, video_id, scraped_at);
