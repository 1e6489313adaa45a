-- Shopify: orders of the brands' shops, landed from the orders/create and orders/updated
-- webhooks (see docs/sources.md). Shopify retries webhooks, so deliveries repeat.

CREATE DATABASE IF NOT EXISTS raw_shopify;

-- Grain: one row per order, its latest version. Every update re-delivers the whole order; the
-- version is Shopify's updated_at. created_at never changes, so it can sit in the key and the
-- partition: staging reads a shop's orders by creation time.
CREATE TABLE IF NOT EXISTS raw_shopify.orders
(
    shop_domain         LowCardinality(String),
    order_id            UInt64,
    order_number        UInt32,
    created_at          DateTime64(3, 'UTC'),
    updated_at          DateTime64(3, 'UTC'),
    cancelled_at        Nullable(DateTime64(3, 'UTC')),
    financial_status    LowCardinality(String),            -- paid, pending, refunded
    fulfillment_status  LowCardinality(Nullable(String)),  -- NULL until shipped
    currency            LowCardinality(String),
    subtotal_price      Decimal(12, 2),
    total_discounts     Decimal(12, 2),
    total_price         Decimal(12, 2),
    discount_codes      Array(String),                     -- influencer codes among them
    customer_id         Nullable(UInt64),                  -- NULL for guest checkouts
    shipping_country    LowCardinality(Nullable(String)),
    source_name         LowCardinality(String),            -- web, mobile, pos
    _ingested_at        DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY (shop_domain, created_at, order_id);

-- Grain: one row per line item of an order, from orders/create; repeated webhook deliveries
-- collapse on the key.
CREATE TABLE IF NOT EXISTS raw_shopify.order_line_items
(
    shop_domain     LowCardinality(String),
    order_id        UInt64,
    line_item_id    UInt64,
    created_at      DateTime64(3, 'UTC'),  -- the order's, for partitioning
    product_id      UInt64,
    variant_id      UInt64,
    sku             String,
    title           String,
    quantity        UInt16,
    price           Decimal(12, 2),
    total_discount  Decimal(12, 2),
    _ingested_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY (shop_domain, order_id, line_item_id);
