-- Shopify orders for one batch. Parameters: seed, origin, lo, hi (see beat.sql) and
-- orders_per_day across all shops.
--
-- Orders form one deterministic sequence: order k is created at (k + jitter) / rate. Its shop
-- is drawn with a skew (a few big shops take most orders); a quarter of the orders of a shop
-- whose brand runs campaigns carry an influencer's discount code from Coffee. Each order then
-- lives through versions, each delivered by a webhook 5 s to 2 min after it happened (Shopify
-- retries 1% of them): created (paid, or pending for cash on delivery), fulfilled 1-3 days
-- later or cancelled within a day, and for 4% refunded 4-12 days later. A batch scans back 13
-- days to find every version that lands in its window.

TRUNCATE TABLE stir_seed.order_plan;

INSERT INTO stir_seed.order_plan
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    {orders_per_day:Float64} / day AS rate,
    (cityHash64({seed:UInt64}, 'order', k) + 0.5) / two64 AS u_time,
    (cityHash64({seed:UInt64}, 'order_shop', k) + 0.5) / two64 AS u_shop,
    (cityHash64({seed:UInt64}, 'order_code', k) + 0.5) / two64 AS u_code,
    (cityHash64({seed:UInt64}, 'order_items', k) + 0.5) / two64 AS u_items,
    (cityHash64({seed:UInt64}, 'order_customer', k) + 0.5) / two64 AS u_customer,
    toUInt64(least(6, 1 + floor(-log(u_items) * 0.8))) AS n_items,
    -- Products: each shop has a catalogue of 60; popular ones sell more.
    arrayMap(i -> toUInt64(floor(60 * pow((cityHash64({seed:UInt64}, 'order_product', k, i) + 0.5) / two64, 2))), range(n_items)) AS ranks,
    arrayMap(r -> exp(3.2 + 0.8 * sqrt(-2 * log((cityHash64({seed:UInt64}, 'price_a', s.shop_index, r) + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, 'price_b', s.shop_index, r) + 0.5) / two64)), ranks) AS usd_prices
SELECT
    k,
    4400000000000 + k AS order_id,
    s.domain AS shop_domain,
    s.currency,
    s.country AS shop_country,
    (k + u_time) / rate AS created_s,
    multiIf(
        length(s.codes) > 0 AND u_code < 0.25, arrayElement(s.codes, 1 + cityHash64({seed:UInt64}, 'order_which_code', k) % length(s.codes)),
        u_code > 0.92, 'WELCOME10',
        NULL) AS discount_code,
    if(discount_code IS NULL, 0, toUInt8OrZero(extract(discount_code, '(\\d+)$'))) AS discount_pct,
    arrayMap(r -> 7000000000 + s.shop_index * 1000 + r, ranks) AS product_ids,
    -- Prices end in .99 in dollars, in 9 in rupees (Decimal arithmetic: no float rounding).
    arrayMap(p -> if(s.currency = 'INR', toDecimal64(round(p * 8) * 10 - 1, 2),
                     toDecimal64(round(p), 2) - toDecimal64('0.01', 2)), usd_prices) AS prices,
    arrayMap(i -> toUInt16(multiIf(
        (cityHash64({seed:UInt64}, 'order_qty', k, i) % 100) < 85, 1,
        (cityHash64({seed:UInt64}, 'order_qty', k, i) % 100) < 96, 2, 3)), range(n_items)) AS quantities,
    -- 15% guest checkouts; the rest come from a pool of repeat customers per shop.
    if(u_customer < 0.15, NULL,
       cityHash64(s.domain, toUInt64(floor(pow(u_customer, 1.5) * 5000))) % 9000000000000 + 1000000000000) AS customer_id
FROM numbers(
    toUInt64(greatest(0, floor(({lo:Float64} - 13 * 86400) * {orders_per_day:Float64} / 86400))),
    toUInt64(ceil(({hi:Float64} - greatest(0, {lo:Float64} - 13 * 86400)) * {orders_per_day:Float64} / 86400) + 2)) AS o
INNER JOIN
(
    SELECT
        toUInt64(row_number() OVER (ORDER BY b.id) - 1) AS shop_index,
        b.shopify_domain AS domain,
        b.country AS country,
        if(b.country = 'IN', 'INR', 'USD') AS currency,
        c.codes AS codes
    FROM raw_coffee.brands AS b
    LEFT JOIN
    (
        SELECT cl.brand_id, arraySort(groupUniqArray(assumeNotNull(m.discount_code))) AS codes
        FROM raw_coffee.collection_members AS m
        INNER JOIN raw_coffee.collections AS cl ON cl.id = m.collection_id
        WHERE m.discount_code IS NOT NULL
        GROUP BY cl.brand_id
    ) AS c ON c.brand_id = b.id
    WHERE b.shopify_domain IS NOT NULL
) AS s
ON s.shop_index = toUInt64(floor(
    (SELECT count() FROM raw_coffee.brands WHERE shopify_domain IS NOT NULL)
    * pow((cityHash64({seed:UInt64}, 'order_shop', o.number) + 0.5) / 18446744073709551616., 2.2)))
ARRAY JOIN [o.number] AS k;

-- Line items arrive with the orders/create webhook (and its retries).
INSERT INTO raw_shopify.order_line_items
WITH
    18446744073709551616. AS two64,
    (cityHash64({seed:UInt64}, 'webhook', order_id, 0) + 0.5) / two64 AS u_delay,
    (cityHash64({seed:UInt64}, 'webhook_repeat', order_id, 0) + 0.5) / two64 AS u_repeat,
    created_s + 5 + 115 * u_delay + if(copy = 1, 60 + 1800 * u_repeat, 0) AS ingest_s
SELECT
    shop_domain,
    order_id,
    order_id * 10 + i AS line_item_id,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(created_s * 1000)) AS created_at,
    product_ids[i + 1] AS product_id,
    product_ids[i + 1] * 10 + cityHash64('variant', order_id, i) % 3 AS variant_id,
    concat('SKU-', toString(product_ids[i + 1] % 100000)) AS sku,
    concat(arrayElement(['Classic', 'Everyday', 'Signature', 'Mini', 'Deluxe'], 1 + product_ids[i + 1] % 5), ' ',
           arrayElement(['Serum', 'Tee', 'Granola', 'Bottle', 'Cushion', 'Tote', 'Lipstick', 'Sneakers'], 1 + intDiv(product_ids[i + 1], 5) % 8)) AS title,
    quantities[i + 1] AS quantity,
    prices[i + 1] AS price,
    toDecimal64(round(toDecimal128(prices[i + 1], 4) * quantities[i + 1] * discount_pct / 100, 2), 2) AS total_discount,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(ingest_s * 1000)) AS _ingested_at
FROM stir_seed.order_plan
ARRAY JOIN range(length(prices)) AS i
ARRAY JOIN [0, 1] AS copy
WHERE (copy = 0 OR u_repeat < 0.01) AND ingest_s > {lo:Float64} AND ingest_s <= {hi:Float64};

INSERT INTO raw_shopify.orders
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    (cityHash64({seed:UInt64}, 'order_life', order_id) + 0.5) / two64 AS u_life,
    (cityHash64({seed:UInt64}, 'order_when', order_id) + 0.5) / two64 AS u_when,
    u_life < 0.02 AS cancelled,
    u_life > 0.96 AS refunded,
    (cityHash64({seed:UInt64}, 'order_cod', order_id) + 0.5) / two64 < if(currency = 'INR', 0.3, 0.05) AS cash_on_delivery,
    -- version 0 created, 1 fulfilled or cancelled, 2 refunded
    multiIf(
        version = 0, created_s,
        version = 1 AND cancelled, created_s + 3600 + u_when * 23 * 3600,
        version = 1, created_s + (1 + 2 * u_when) * day,
        created_s + (4 + 8 * u_when) * day) AS version_s,
    (cityHash64({seed:UInt64}, 'webhook', order_id, version) + 0.5) / two64 AS u_delay,
    (cityHash64({seed:UInt64}, 'webhook_repeat', order_id, version) + 0.5) / two64 AS u_repeat,
    version_s + 5 + 115 * u_delay + if(copy = 1, 60 + 1800 * u_repeat, 0) AS ingest_s,
    -- Money in Decimal throughout, so totals add up to the cent.
    toDecimal64(arraySum(arrayMap((p, q) -> p * q, prices, quantities)), 2) AS subtotal,
    toDecimal64(arraySum(arrayMap((p, q) -> round(toDecimal128(p, 4) * q * discount_pct / 100, 2), prices, quantities)), 2) AS discounts,
    -- Flat shipping below a free-shipping threshold.
    multiIf(currency = 'INR' AND subtotal < 499, toDecimal64('49', 2),
            currency != 'INR' AND subtotal < 50, toDecimal64('4.99', 2),
            toDecimal64('0', 2)) AS shipping
SELECT
    shop_domain,
    order_id,
    toUInt32(1001 + k) AS order_number,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(created_s * 1000)) AS created_at,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(version_s * 1000)) AS updated_at,
    if(version = 1 AND cancelled, updated_at, NULL) AS cancelled_at,
    multiIf(
        version = 2, 'refunded',
        version = 1 AND cancelled, 'voided',
        version = 0 AND cash_on_delivery, 'pending',
        'paid') AS financial_status,
    if(version >= 1 AND NOT cancelled, 'fulfilled', NULL) AS fulfillment_status,
    currency,
    subtotal AS subtotal_price,
    discounts AS total_discounts,
    subtotal - discounts + shipping AS total_price,
    if(discount_code IS NULL, [], [assumeNotNull(discount_code)]) AS discount_codes,
    customer_id,
    if((cityHash64('ship_country', order_id) % 100) < 8, NULL,
       if((cityHash64('ship_country', order_id) % 100) < 90, shop_country, 'US')) AS shipping_country,
    multiIf((cityHash64('source', order_id) % 100) < 70, 'web', (cityHash64('source', order_id) % 100) < 95, 'mobile', 'pos') AS source_name,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(ingest_s * 1000)) AS _ingested_at
FROM stir_seed.order_plan
ARRAY JOIN [0, 1, 2] AS version
ARRAY JOIN [0, 1] AS copy
WHERE (version < 2 OR (refunded AND NOT cancelled))
  AND (copy = 0 OR u_repeat < 0.01)
  AND ingest_s > {lo:Float64} AND ingest_s <= {hi:Float64};
