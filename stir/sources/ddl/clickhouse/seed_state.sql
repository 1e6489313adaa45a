-- The data generator's own tables (stir seed); not a source, no model reads them.

CREATE DATABASE IF NOT EXISTS stir_seed;

-- One row per generated batch: the base seed, then each --increment. The last row's window_hi
-- is the watermark the next increment starts from; seed and scale are reused by increments.
CREATE TABLE IF NOT EXISTS stir_seed.batches
(
    batch       UInt32,
    seed        UInt64,
    scale       LowCardinality(String),
    anchor      DateTime64(3, 'UTC'),          -- the end of the base history
    window_lo   DateTime64(3, 'UTC'),
    window_hi   DateTime64(3, 'UTC'),
    created_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY batch;

-- The hidden "truth" behind the Instagram scrapes: one row per profile with the parameters
-- every snapshot is computed from (audience at the anchor date, growth, posting cadence, scrape
-- schedule, ...). Recomputed by every base seed, read by every batch.
CREATE TABLE IF NOT EXISTS stir_seed.instagram_profiles
(
    n                 UInt64,
    profile_id        UInt64,
    username          String,
    full_name         Nullable(String),
    biography         Nullable(String),
    external_url      Nullable(String),
    category          LowCardinality(Nullable(String)),
    country           LowCardinality(Nullable(String)),
    home_country      LowCardinality(String),
    language          LowCardinality(Nullable(String)),
    is_business       Bool,
    is_verified       Bool,
    is_private        Bool,
    private_from      Nullable(Float64),   -- seconds after origin when it turns private
    deleted_from      Nullable(Float64),   -- seconds after origin when it is deleted
    followers         Float64,             -- at the anchor date
    growth            Float64,             -- log-growth per 30 days
    jump_at           Float64,             -- seconds after origin of a viral jump (or never)
    jump              Float64,             -- its factor
    following         UInt32,
    media_base        UInt32,
    engagement        Float64,             -- likes per follower per post
    comment_ratio     Float64,             -- comments per like
    video_share       Float64,
    hides_likes       Float64,             -- share of posts with hidden likes
    post_every        Float64,             -- seconds between posts
    post_phase        Float64,
    scrape_every      Float64,             -- seconds between scrapes
    scrape_phase      Float64,
    tracked           Bool
)
ENGINE = MergeTree
ORDER BY n;

CREATE TABLE IF NOT EXISTS stir_seed.youtube_channels
(
    n                  UInt64,
    channel_id         String,
    title              String,
    description        Nullable(String),
    custom_url         Nullable(String),
    country            LowCardinality(Nullable(String)),
    home_country       LowCardinality(String),
    language           LowCardinality(Nullable(String)),
    category           LowCardinality(String),
    published_at       DateTime64(3, 'UTC'),
    hidden_subscribers Bool,
    subscribers        Float64,            -- at the anchor date
    growth             Float64,
    views_per_sub      Float64,            -- lifetime views per subscriber
    video_views        Float64,            -- views of a typical video, settled
    like_ratio         Float64,
    comment_ratio      Float64,
    shorts_share       Float64,
    video_every        Float64,
    video_phase        Float64,
    video_base         UInt32,
    scrape_every       Float64,
    scrape_phase       Float64,
    tracked            Bool,
    vidooly            Bool                -- covered by Vidooly's estimates
)
ENGINE = MergeTree
ORDER BY n;

-- Working tables of one batch, emptied at its start: the scrapes whose data lands in this batch
-- (with repeat deliveries), and the posts and videos those scrapes observed. Each feeds two raw
-- tables (snapshots and metadata), so it is computed once.
CREATE TABLE IF NOT EXISTS stir_seed.deliveries
(
    source        LowCardinality(String),
    request_id    UInt64,
    n             UInt64,                 -- the entity's row in the world table
    scraped_at    DateTime64(3, 'UTC'),
    t             Float64,                -- scraped_at in seconds after origin
    _ingested_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (source, n, t);

CREATE TABLE IF NOT EXISTS stir_seed.post_observations
(
    profile_id           UInt64,
    post_id              UInt64,
    j                    UInt32,
    shortcode            String,
    media_type           LowCardinality(String),
    posted_at            DateTime64(3, 'UTC'),
    is_paid_partnership  Bool,
    scraped_at           DateTime64(3, 'UTC'),
    request_id           UInt64,
    likes                Nullable(UInt64),
    comments             Nullable(UInt64),
    views                Nullable(UInt64),
    _ingested_at         DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (profile_id, post_id, scraped_at);

CREATE TABLE IF NOT EXISTS stir_seed.video_observations
(
    channel_id        String,
    video_id          String,
    j                 UInt32,
    published_at      DateTime64(3, 'UTC'),
    is_short          Bool,
    category          LowCardinality(String),
    language          LowCardinality(Nullable(String)),
    scraped_at        DateTime64(3, 'UTC'),
    request_id        UInt64,
    views             UInt64,
    likes             Nullable(UInt64),
    comments          Nullable(UInt64),
    _ingested_at      DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (channel_id, video_id, scraped_at);

-- The orders whose versions can land in one batch, with everything their rows are built from.
CREATE TABLE IF NOT EXISTS stir_seed.order_plan
(
    k               UInt64,
    order_id        UInt64,
    shop_domain     String,
    currency        LowCardinality(String),
    shop_country    LowCardinality(String),
    created_s       Float64,
    discount_code   Nullable(String),
    discount_pct    UInt8,
    product_ids     Array(UInt64),
    prices          Array(Decimal(12, 2)),
    quantities      Array(UInt16),
    customer_id     Nullable(UInt64)
)
ENGINE = MergeTree
ORDER BY k;
