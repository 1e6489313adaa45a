-- Instagram, as Beat's scrapes of the profile endpoint deliver it (see docs/sources.md).
--
-- Every table carries `request_id` (the raw_beat.scrape_requests row that fetched it) and
-- `_ingested_at` (when the row landed here). Beat delivers at least once, so the same
-- observation can arrive twice; the ReplacingMergeTree engines collapse those repeats.
-- Readers that need exact answers before a merge use FINAL or argMax.

CREATE DATABASE IF NOT EXISTS raw_instagram;

-- Grain: one row per successful profile scrape, (profile_id, scraped_at).
-- History is the point (growth over time), so the scrape time is part of the key and a repeat
-- delivery of the same scrape replaces itself. Monthly partitions: old history is dropped by
-- partition. ORDER BY serves both "history of one profile" and "latest snapshot per profile".
CREATE TABLE IF NOT EXISTS raw_instagram.account_snapshots
(
    profile_id    UInt64,
    scraped_at    DateTime64(3, 'UTC'),
    request_id    UInt64,
    username      String,
    full_name     Nullable(String),
    biography     Nullable(String),
    external_url  Nullable(String),
    category      LowCardinality(Nullable(String)),  -- business and creator accounts only
    country       LowCardinality(Nullable(String)),  -- inferred by Beat, often unknown
    language      LowCardinality(Nullable(String)),  -- inferred from captions
    followers     UInt64,
    following     UInt32,
    media_count   UInt32,
    is_verified   Bool,
    is_private    Bool,
    is_business   Bool,
    _ingested_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(scraped_at)
ORDER BY (profile_id, scraped_at);

-- Grain: one row per post, its latest observed metadata. Each scrape that sees the post
-- re-delivers it; the version is the scrape time, so a late-arriving older scrape never
-- overwrites a newer one. Partitioned by the month the post was published (it never changes).
CREATE TABLE IF NOT EXISTS raw_instagram.posts
(
    post_id              UInt64,
    profile_id           UInt64,
    shortcode            String,
    media_type           LowCardinality(String),  -- image, carousel, video, reel
    posted_at            DateTime64(3, 'UTC'),
    caption              Nullable(String),
    hashtags             Array(String),
    is_paid_partnership  Bool,
    scraped_at           DateTime64(3, 'UTC'),
    _ingested_at         DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(scraped_at)
PARTITION BY toYYYYMM(posted_at)
ORDER BY (profile_id, post_id);

-- Grain: one row per post per scrape, (post_id, scraped_at): likes, comments and views as they
-- accumulate. The profile endpoint returns a profile's latest posts, so a post is observed at
-- every scrape during its first weeks. ORDER BY puts a profile's posts and each post's history
-- together (engagement per profile, latest metrics per post).
CREATE TABLE IF NOT EXISTS raw_instagram.post_snapshots
(
    profile_id    UInt64,
    post_id       UInt64,
    scraped_at    DateTime64(3, 'UTC'),
    request_id    UInt64,
    likes         Nullable(UInt64),  -- NULL when the owner hides like counts
    comments      Nullable(UInt64),  -- NULL when comments are turned off
    views         Nullable(UInt64),  -- videos and reels only
    _ingested_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(scraped_at)
ORDER BY (profile_id, post_id, scraped_at);

-- Grain: one row per comment, its latest observation. A comments fetch returns a post's newest
-- comments, so a comment is seen again by later fetches (with more likes): the version is the
-- fetch time. Partitioned by when the comment was written (it never changes).
CREATE TABLE IF NOT EXISTS raw_instagram.comments
(
    profile_id          UInt64,  -- the post's owner
    post_id             UInt64,
    comment_id          UInt64,
    commenter_username  String,
    text                String,
    commented_at        DateTime64(3, 'UTC'),
    likes               UInt32,
    scraped_at          DateTime64(3, 'UTC'),
    request_id          UInt64,
    _ingested_at        DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(scraped_at)
PARTITION BY toYYYYMM(commented_at)
ORDER BY (profile_id, post_id, comment_id);
