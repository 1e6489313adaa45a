-- Coffee, the app's operational database, as replicated into the warehouse. PostgreSQL
-- (ddl/postgres/coffee.sql) is the system of record; this is the copy the warehouse joins
-- against (collection analytics). The replication lands changed rows with their updated_at, so
-- every table is a ReplacingMergeTree on its primary key with updated_at as the version.

CREATE DATABASE IF NOT EXISTS raw_coffee;

CREATE TABLE IF NOT EXISTS raw_coffee.brands
(
    id              UInt64,
    name            String,
    slug            String,
    industry        LowCardinality(String),
    country         LowCardinality(String),
    plan            LowCardinality(String),   -- starter, growth, enterprise
    shopify_domain  Nullable(String),          -- brands that sell on Shopify
    created_at      DateTime64(3, 'UTC'),
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS raw_coffee.users
(
    id             UInt64,
    brand_id       UInt64,
    email          String,
    full_name      String,
    role           LowCardinality(String),    -- owner, admin, member
    created_at     DateTime64(3, 'UTC'),
    last_login_at  Nullable(DateTime64(3, 'UTC')),
    updated_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

-- The profiles the app follows (a profile in any collection is tracked); Beat scrapes them
-- daily. platform_id is the Instagram profile id (as text) or the YouTube channel id.
CREATE TABLE IF NOT EXISTS raw_coffee.tracked_profiles
(
    id           UInt64,
    platform     LowCardinality(String),      -- instagram, youtube
    platform_id  String,
    username     String,
    created_at   DateTime64(3, 'UTC'),
    updated_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS raw_coffee.collections
(
    id           UInt64,
    brand_id     UInt64,
    created_by   UInt64,                      -- users.id
    name         String,
    description  Nullable(String),
    created_at   DateTime64(3, 'UTC'),
    archived_at  Nullable(DateTime64(3, 'UTC')),
    updated_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS raw_coffee.collection_members
(
    id                  UInt64,
    collection_id       UInt64,
    tracked_profile_id  UInt64,
    discount_code       Nullable(String),     -- the influencer's code for the brand's shop
    added_at            DateTime64(3, 'UTC'),
    updated_at          DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS raw_coffee.campaigns
(
    id             UInt64,
    brand_id       UInt64,
    collection_id  Nullable(UInt64),
    name           String,
    status         LowCardinality(String),    -- draft, active, completed
    discount_pct   UInt8,
    budget         Nullable(Decimal(12, 2)),
    currency       LowCardinality(String),
    starts_on      Date,
    ends_on        Nullable(Date),
    created_at     DateTime64(3, 'UTC'),
    updated_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;
