-- Coffee, the app's operational data, generated into raw_coffee (the warehouse's replica);
-- seed.py then copies it into PostgreSQL's coffee schema. Run by the base seed only.
-- Parameters: seed, brands (count), anchor (the end of the base history).
--
-- Ids are derived, not counted, so every table can compute its keys independently:
-- brand b has id b + 1, its users b * 100 + i, its collections b * 100 + i; member k of
-- collection c has id c * 1000 + k; tracked profiles reuse the Instagram world row
-- (n + 1) and 100,000,000 + n + 1 for YouTube channels. Tracked profiles are exactly the world's
-- tracked ones, which Beat scrapes daily.

TRUNCATE TABLE raw_coffee.brands;
TRUNCATE TABLE raw_coffee.users;
TRUNCATE TABLE raw_coffee.tracked_profiles;
TRUNCATE TABLE raw_coffee.collections;
TRUNCATE TABLE raw_coffee.collection_members;
TRUNCATE TABLE raw_coffee.campaigns;

INSERT INTO raw_coffee.brands
WITH
    18446744073709551616. AS two64,
    ['Urban', 'Mama', 'Blue', 'Bold', 'Pure', 'Nova', 'Wild', 'Tiny', 'Golden', 'Happy',
     'Desi', 'Bright', 'Little', 'True', 'Good'] AS first_words,
    ['Earth', 'Glow', 'Roots', 'Threads', 'Bites', 'Labs', 'Nest', 'Studio', 'Leaf', 'Wave',
     'Kart', 'Brew', 'Basics', 'Co', 'Beauty'] AS second_words,
    ['beauty', 'fashion', 'food', 'fitness', 'tech', 'home', 'travel', 'finance', 'kids', 'pets'] AS industries,
    ['IN', 'US', 'GB', 'AE', 'ID', 'SG'] AS countries,
    arrayCumSum([60., 15, 8, 7, 6, 4]) AS country_cw,
    (cityHash64({seed:UInt64}, 'brand', n, 'a') + 0.5) / two64 AS u_a,
    (cityHash64({seed:UInt64}, 'brand', n, 'b') + 0.5) / two64 AS u_b,
    (cityHash64({seed:UInt64}, 'brand', n, 'c') + 0.5) / two64 AS u_c,
    (cityHash64({seed:UInt64}, 'brand', n, 'd') + 0.5) / two64 AS u_d,
    concat(arrayElement(first_words, 1 + toUInt32(u_a * 15)), ' ', arrayElement(second_words, 1 + toUInt32(u_b * 15))) AS base_name,
    concat(lower(replaceAll(base_name, ' ', '')), '-', toString(n + 1)) AS brand_slug,
    {anchor:DateTime64(3, 'UTC')} - toIntervalSecond(toInt64((30 + u_c * 700) * 86400)) AS created
SELECT
    n + 1 AS id,
    base_name AS name,
    brand_slug AS slug,
    arrayElement(industries, 1 + toUInt32(u_c * 10)) AS industry,
    arrayElement(countries, arrayFirstIndex(c -> c >= u_d * country_cw[-1], country_cw)) AS country,
    multiIf(u_b < 0.6, 'starter', u_b < 0.9, 'growth', 'enterprise') AS plan,
    -- Six brands in ten sell on Shopify.
    if((cityHash64({seed:UInt64}, 'brand', n, 'shop') + 0.5) / two64 < 0.6, concat(brand_slug, '.myshopify.com'), NULL) AS shopify_domain,
    created AS created_at,
    created + toIntervalSecond(toInt64(u_a * 86400 * 20)) AS updated_at
FROM (SELECT number AS n FROM numbers({brands:UInt64}));

INSERT INTO raw_coffee.users
WITH
    18446744073709551616. AS two64,
    ['Aditi', 'Karan', 'Sneha', 'Vivek', 'Pooja', 'Nikhil', 'Riya', 'Amit', 'Jess', 'Dan',
     'Mei', 'Omar', 'Laura', 'Sam', 'Tara'] AS first_names,
    ['Mehta', 'Kapoor', 'Nair', 'Joshi', 'Bose', 'Verma', 'Brown', 'Wong', 'Haddad', 'Lopez'] AS last_names,
    (cityHash64({seed:UInt64}, 'user', b.id, i, 'a') + 0.5) / two64 AS u_a,
    (cityHash64({seed:UInt64}, 'user', b.id, i, 'b') + 0.5) / two64 AS u_b,
    arrayElement(first_names, 1 + toUInt32(u_a * 15)) AS first_name,
    arrayElement(last_names, 1 + toUInt32(u_b * 10)) AS last_name,
    b.created_at + toIntervalSecond(toInt64(i * 86400 * (3 + u_a * 30))) AS created
SELECT
    b.id * 100 + i AS id,
    b.id AS brand_id,
    concat(lower(first_name), '.', lower(last_name), toString(i), '@', b.slug, '.example.com') AS email,
    concat(first_name, ' ', last_name) AS full_name,
    multiIf(i = 0, 'owner', u_b < 0.25, 'admin', 'member') AS role,
    created AS created_at,
    if(u_b > 0.9, NULL, greatest(created, {anchor:DateTime64(3, 'UTC')} - toIntervalSecond(toInt64(u_a * u_a * 60 * 86400)))) AS last_login_at,
    created AS updated_at
FROM raw_coffee.brands AS b
ARRAY JOIN range(toUInt64(least(20, 1 + floor(-log((cityHash64({seed:UInt64}, 'users', b.id) + 0.5) / two64) * 2.5)))) AS i;

INSERT INTO raw_coffee.tracked_profiles
SELECT
    n + 1 AS id,
    'instagram' AS platform,
    toString(profile_id) AS platform_id,
    username,
    {anchor:DateTime64(3, 'UTC')} - toIntervalSecond(toInt64(400 * 86400 * ((cityHash64({seed:UInt64}, 'tracked_at', profile_id) % 1000) / 1000.))) AS created_at,
    created_at AS updated_at
FROM stir_seed.instagram_profiles
WHERE tracked
UNION ALL
SELECT
    100000000 + n + 1 AS id,
    'youtube' AS platform,
    channel_id AS platform_id,
    coalesce(custom_url, title) AS username,
    {anchor:DateTime64(3, 'UTC')} - toIntervalSecond(toInt64(400 * 86400 * ((cityHash64({seed:UInt64}, 'tracked_at', channel_id) % 1000) / 1000.))) AS created_at,
    created_at AS updated_at
FROM stir_seed.youtube_channels
WHERE tracked;

INSERT INTO raw_coffee.collections
WITH
    18446744073709551616. AS two64,
    ['Diwali shortlist', 'Summer launch', 'Top beauty creators', 'Micro-influencers', 'Festive campaign',
     'Fitness ambassadors', 'Unboxing creators', 'Tier-2 cities', 'Gen Z picks', 'Always-on roster',
     'Product seeding', 'Wedding season'] AS names,
    (cityHash64({seed:UInt64}, 'collection', b.id, i) + 0.5) / two64 AS u_a,
    (cityHash64({seed:UInt64}, 'collection_b', b.id, i) + 0.5) / two64 AS u_b,
    b.created_at + toIntervalSecond(toInt64(u_a * greatest(1, dateDiff('second', b.created_at, {anchor:DateTime64(3, 'UTC')})))) AS created
SELECT
    b.id * 100 + i AS id,
    b.id AS brand_id,
    arrayElement(u.user_ids, 1 + toUInt32(u_b * length(u.user_ids))) AS created_by,
    concat(arrayElement(names, 1 + toUInt32(u_a * 12)), ' ', toString(i + 1)) AS name,
    if(u_b < 0.6, NULL, 'Shortlisted by the brand team') AS description,
    created AS created_at,
    if(u_b > 0.9, created + toIntervalDay(30), NULL) AS archived_at,
    if(u_b > 0.9, created + toIntervalDay(30), created) AS updated_at
FROM raw_coffee.brands AS b
INNER JOIN (SELECT brand_id, arraySort(groupArray(id)) AS user_ids FROM raw_coffee.users GROUP BY brand_id) AS u
    ON u.brand_id = b.id
ARRAY JOIN range(toUInt64(least(40, 1 + floor(-log((cityHash64({seed:UInt64}, 'collections', b.id) + 0.5) / two64) * 3)))) AS i;

-- Half of the collections run a campaign (same id as the collection); some brands also have a
-- draft without a collection yet.
INSERT INTO raw_coffee.campaigns
WITH
    18446744073709551616. AS two64,
    (cityHash64({seed:UInt64}, 'campaign', c.id) + 0.5) / two64 AS u_a,
    toDate(c.created_at + toIntervalDay(toInt64(2 + u_a * 10))) AS starts,
    if(u_a < 0.2, NULL, starts + toIntervalDay(toInt64(14 + u_a * 60))) AS ends
SELECT
    c.id AS id,
    c.brand_id,
    c.id AS collection_id,
    concat(c.name, ' campaign') AS name,
    multiIf(starts > toDate({anchor:DateTime64(3, 'UTC')}), 'draft',
            ends IS NOT NULL AND ends < toDate({anchor:DateTime64(3, 'UTC')}), 'completed', 'active') AS status,
    arrayElement([10, 15, 20, 25], 1 + toUInt32(u_a * 1000) % 4) AS discount_pct,
    if(u_a > 0.8, NULL, toDecimal64(round(exp(11 + 1.2 * u_a)), 2)) AS budget,
    if(b.country = 'IN', 'INR', 'USD') AS currency,
    starts AS starts_on,
    ends AS ends_on,
    c.created_at + toIntervalDay(1) AS created_at,
    c.created_at + toIntervalDay(1) AS updated_at
FROM raw_coffee.collections AS c
INNER JOIN raw_coffee.brands AS b ON b.id = c.brand_id
WHERE (cityHash64({seed:UInt64}, 'has_campaign', c.id) + 0.5) / two64 < 0.5
UNION ALL
SELECT
    b.id * 100 + 99 AS id,
    b.id AS brand_id,
    NULL AS collection_id,
    'Next launch (draft)' AS name,
    'draft' AS status,
    15 AS discount_pct,
    NULL AS budget,
    if(b.country = 'IN', 'INR', 'USD') AS currency,
    toDate({anchor:DateTime64(3, 'UTC')}) + toIntervalDay(30) AS starts_on,
    NULL AS ends_on,
    b.created_at + toIntervalDay(2) AS created_at,
    b.created_at + toIntervalDay(2) AS updated_at
FROM raw_coffee.brands AS b
WHERE (cityHash64({seed:UInt64}, 'draft', b.id) + 0.5) / two64 < 0.3;

-- Members are drawn from the tracked profiles (a collection holds 3 to 300, median ~20);
-- members of a campaign's collection get a discount code for the brand's shop: a cleaned-up
-- handle plus the campaign's percentage, e.g. PRIYATRAVELS15.
INSERT INTO raw_coffee.collection_members
SELECT
    m.id,
    m.collection_id,
    m.tracked_profile_id,
    if(cp.id = 0, NULL,
       concat(upper(substring(replaceRegexpAll(t.username, '[^A-Za-z]', ''), 1, 12)), toString(cp.discount_pct))) AS discount_code,
    m.added_at,
    m.added_at AS updated_at
FROM
(
    WITH
        18446744073709551616. AS two64,
        (SELECT arraySort(groupArray(id)) FROM raw_coffee.tracked_profiles) AS tracked
    SELECT
        c.id * 1000 + k AS id,
        c.id AS collection_id,
        arrayElement(tracked, 1 + cityHash64({seed:UInt64}, 'member', c.id, k) % length(tracked)) AS tracked_profile_id,
        c.created_at + toIntervalSecond(toInt64(k * 3600 + cityHash64({seed:UInt64}, 'added', c.id, k) % 3600)) AS added_at
    FROM raw_coffee.collections AS c
    ARRAY JOIN range(toUInt64(greatest(3, least(300, exp(3 + 1.1 * sqrt(-2 * log((cityHash64({seed:UInt64}, 'size_a', c.id) + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, 'size_b', c.id) + 0.5) / two64)))))) AS k
    WHERE length(tracked) > 0
    -- The same profile drawn twice for a collection is kept once (Coffee has UNIQUE on the pair).
    ORDER BY collection_id, tracked_profile_id, id
    LIMIT 1 BY collection_id, tracked_profile_id
) AS m
INNER JOIN raw_coffee.tracked_profiles AS t ON t.id = m.tracked_profile_id
LEFT JOIN raw_coffee.campaigns AS cp ON cp.collection_id = m.collection_id;
