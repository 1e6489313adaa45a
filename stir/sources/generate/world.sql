-- The generator's hidden "truth": one row per Instagram profile and YouTube channel with the
-- parameters every later batch computes its rows from. Run by the base seed only.
--
-- Randomness: ClickHouse's rand() family cannot be seeded, so every random draw is a hash of
-- (seed, entity, salt) mapped to a uniform in (0, 1): (cityHash64(...) + 0.5) / 2^64. A
-- different salt gives an independent draw. Normals use Box-Muller on two uniforms, heavy tails
-- a Pareto (u^(-1/alpha)) or log-normal (exp(mu + sigma * z)) transform.
--
-- Parameters: seed, profiles, channels (counts), origin (start of the 90-day history).

TRUNCATE TABLE IF EXISTS stir_seed.instagram_profiles;

INSERT INTO stir_seed.instagram_profiles
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    -- Skewed home countries: India leads, as for an Indian influencer-marketing app.
    ['IN', 'US', 'ID', 'BR', 'GB', 'MX', 'PH', 'TR', 'NG', 'AE',
     'DE', 'FR', 'CA', 'AU', 'ES', 'IT', 'PK', 'BD', 'JP', 'KR'] AS countries,
    arrayCumSum([40., 12, 8, 7, 4, 4, 3, 3, 3, 2, 2, 2, 2, 1.5, 1.5, 1.5, 1.5, 1, 1, 1]) AS country_cw,
    ['hi', 'en', 'id', 'pt', 'en', 'es', 'tl', 'tr', 'en', 'ar',
     'de', 'fr', 'en', 'en', 'es', 'it', 'ur', 'bn', 'ja', 'ko'] AS country_languages,
    ['ta', 'te', 'bn', 'mr', 'ml', 'kn'] AS indian_languages,
    -- Instagram's own account categories, Zipf-skewed (weight 1/k).
    ['Digital creator', 'Personal blog', 'Public figure', 'Fashion model', 'Artist',
     'Health/beauty', 'Video creator', 'Musician/band', 'Blogger', 'Gamer', 'Athlete',
     'Chef', 'Photographer', 'Entrepreneur', 'Comedian', 'Fitness trainer', 'Education',
     'Travel company', 'Entertainment website', 'Shopping & retail'] AS categories,
    arrayCumSum(arrayMap(k -> 1. / k, range(1, 21))) AS category_cw,
    ['aarav', 'priya', 'rahul', 'ananya', 'arjun', 'isha', 'rohan', 'kavya', 'vikram', 'neha',
     'sara', 'maya', 'leo', 'emma', 'lucas', 'sofia', 'noah', 'ava', 'liam', 'mia', 'ahmed',
     'fatima', 'yuki', 'chen', 'ana', 'joao', 'lara', 'omar', 'zara', 'ravi'] AS first_names,
    ['sharma', 'patel', 'singh', 'gupta', 'khan', 'reddy', 'iyer', 'das', 'smith', 'garcia',
     'silva', 'santos', 'lee', 'kim', 'nguyen', 'ali', 'costa', 'rossi', 'muller', 'tanaka'] AS last_names,
    ['travels', 'eats', 'style', 'fit', 'beauty', 'vlogs', 'tech', 'music', 'art', 'studio',
     'diaries', 'kitchen', 'life', 'official', 'world', 'daily', 'creates', 'films', 'glow',
     'journey'] AS topics,
    ['.', '_', '', '.the.'] AS separators,
    ['Mumbai', 'Delhi', 'Bengaluru', 'Jakarta', 'Sao Paulo', 'London', 'New York', 'Dubai',
     'Lagos', 'Manila', 'Istanbul', 'Mexico City'] AS cities,
    (cityHash64({seed:UInt64}, n, 'name1') + 0.5) / two64 AS u_name1,
    (cityHash64({seed:UInt64}, n, 'name2') + 0.5) / two64 AS u_name2,
    (cityHash64({seed:UInt64}, n, 'name3') + 0.5) / two64 AS u_name3,
    (cityHash64({seed:UInt64}, n, 'name4') + 0.5) / two64 AS u_name4,
    (cityHash64({seed:UInt64}, n, 'country') + 0.5) / two64 AS u_country,
    (cityHash64({seed:UInt64}, n, 'country_known') + 0.5) / two64 AS u_country_known,
    (cityHash64({seed:UInt64}, n, 'language') + 0.5) / two64 AS u_language,
    (cityHash64({seed:UInt64}, n, 'category') + 0.5) / two64 AS u_category,
    (cityHash64({seed:UInt64}, n, 'business') + 0.5) / two64 AS u_business,
    (cityHash64({seed:UInt64}, n, 'followers') + 0.5) / two64 AS u_followers,
    (cityHash64({seed:UInt64}, n, 'verified') + 0.5) / two64 AS u_verified,
    (cityHash64({seed:UInt64}, n, 'private') + 0.5) / two64 AS u_private,
    (cityHash64({seed:UInt64}, n, 'private_from') + 0.5) / two64 AS u_private_from,
    (cityHash64({seed:UInt64}, n, 'deleted') + 0.5) / two64 AS u_deleted,
    (cityHash64({seed:UInt64}, n, 'deleted_from') + 0.5) / two64 AS u_deleted_from,
    (cityHash64({seed:UInt64}, n, 'jump') + 0.5) / two64 AS u_jump,
    (cityHash64({seed:UInt64}, n, 'jump_at') + 0.5) / two64 AS u_jump_at,
    (cityHash64({seed:UInt64}, n, 'tracked') + 0.5) / two64 AS u_tracked,
    (cityHash64({seed:UInt64}, n, 'nulls') + 0.5) / two64 AS u_nulls,
    (cityHash64({seed:UInt64}, n, 'hides') + 0.5) / two64 AS u_hides,
    -- Standard normals (Box-Muller).
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'z_growth_a') + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, n, 'z_growth_b') + 0.5) / two64) AS z_growth,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'z_er_a') + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, n, 'z_er_b') + 0.5) / two64) AS z_er,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'z_misc_a') + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, n, 'z_misc_b') + 0.5) / two64) AS z_following,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'z_misc_a') + 0.5) / two64))
        * sin(2 * pi() * (cityHash64({seed:UInt64}, n, 'z_misc_b') + 0.5) / two64) AS z_media,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'z_post_a') + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, n, 'z_post_b') + 0.5) / two64) AS z_post,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'z_post_a') + 0.5) / two64))
        * sin(2 * pi() * (cityHash64({seed:UInt64}, n, 'z_post_b') + 0.5) / two64) AS z_comments,
    -- Heavy-tailed audience: Pareto with alpha 1.05 above 2,000 followers (median ~3,900,
    -- ~0.2% above a million), capped at the largest real accounts.
    least(650e6, 2000 * pow(u_followers, -1 / 1.05)) AS followers_at_anchor,
    arrayElement(countries, arrayFirstIndex(c -> c >= u_country * country_cw[-1], country_cw)) AS home,
    u_business < 0.65 AS business,
    arrayElement(first_names, 1 + toUInt32(u_name1 * 30)) AS first_name,
    arrayElement(last_names, 1 + toUInt32(u_name2 * 20)) AS last_name,
    arrayElement(topics, 1 + toUInt32(u_name3 * 20)) AS topic,
    multiIf(
        followers_at_anchor >= 1e6, 0.6,
        followers_at_anchor >= 1e5, 0.35,
        followers_at_anchor >= 1e4, 0.12,
        0.03) AS tracked_share,
    u_tracked < tracked_share AS is_tracked
SELECT
    n,
    1000000000 + n AS profile_id,
    -- A bijective scramble of n keeps usernames unique without looking sequential.
    concat(first_name, arrayElement(separators, 1 + toUInt32(u_name4 * 4)), topic, '_',
           lower(hex(toUInt32((n * 2654435761) % 4294967296)))) AS username,
    if(u_nulls < 0.1, NULL, concat(initcap(first_name), ' ', initcap(last_name))) AS full_name,
    if(u_nulls > 0.85, NULL,
       concat(initcap(topic), ' | ', arrayElement(cities, 1 + toUInt32(u_name2 * 12)),
              if(business, ' | Collabs: DM or email', ''))) AS biography,
    if(u_nulls BETWEEN 0.3 AND 0.7, concat('https://linktr.ee/', first_name, topic), NULL) AS external_url,
    if(business, arrayElement(categories,
        arrayFirstIndex(c -> c >= u_category * category_cw[-1], category_cw)), NULL) AS category,
    if(u_country_known < 0.65, home, NULL) AS country,
    home AS home_country,
    multiIf(
        u_language < 0.2, NULL,
        home = 'IN' AND u_language < 0.6, 'en',
        home = 'IN' AND u_language > 0.9, arrayElement(indian_languages, 1 + toUInt32((u_language - 0.9) * 60)),
        u_language < 0.45, 'en',
        arrayElement(country_languages, indexOf(countries, home))) AS language,
    business AS is_business,
    u_verified < multiIf(followers_at_anchor >= 1e6, 0.7, followers_at_anchor >= 1e5, 0.2, 0.004) AS is_verified,
    u_private < if(followers_at_anchor >= 1e5, 0.01, 0.07) AS is_private,
    if(NOT is_private AND u_private_from < 0.01, u_private_from / 0.01 * 120 * day, NULL) AS private_from,
    if(u_deleted < 0.015, (10 + u_deleted_from * 110) * day, NULL) AS deleted_from,
    followers_at_anchor AS followers,
    greatest(-0.5, least(0.8, 0.01 + 0.06 * z_growth)) AS growth,
    if(u_jump < 0.03, u_jump_at * 120 * day, 1e12) AS jump_at,
    1.2 + u_jump / 0.03 AS jump,
    toUInt32(greatest(10, least(7500, exp(6.2 + 0.9 * z_following)))) AS following,
    toUInt32(greatest(5, least(20000, exp(5.5 + 1.0 * z_media)))) AS media_base,
    -- Engagement falls with audience size: ~6.6% at 1k followers, ~1.4% at 1M.
    least(0.5, 0.3 * pow(followers_at_anchor, -0.22) * exp(0.45 * z_er)) AS engagement,
    0.03 * exp(0.5 * z_comments) AS comment_ratio,
    0.1 + 0.6 * u_name4 AS video_share,
    if(u_hides < 0.1, 0.5, 0.01) AS hides_likes,
    7 * day / greatest(0.3, least(21, 1.5 * exp(0.6 * z_post))) AS post_every,
    u_name1 * post_every AS post_phase,
    multiIf(
        followers_at_anchor >= 1e6, 0.5 * day,
        is_tracked OR followers_at_anchor >= 1e5, day,
        followers_at_anchor >= 1e4, 3 * day,
        7 * day) AS scrape_every,
    u_name3 * scrape_every AS scrape_phase,
    is_tracked AS tracked
FROM (SELECT number AS n FROM numbers({profiles:UInt64}));

TRUNCATE TABLE IF EXISTS stir_seed.youtube_channels;

INSERT INTO stir_seed.youtube_channels
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    ['IN', 'US', 'BR', 'ID', 'GB', 'MX', 'PK', 'PH', 'KR', 'JP', 'DE', 'CA'] AS countries,
    arrayCumSum([45., 15, 7, 6, 4, 4, 4, 3, 3, 3, 3, 3]) AS country_cw,
    ['hi', 'en', 'pt', 'id', 'en', 'es', 'ur', 'tl', 'ko', 'ja', 'de', 'en'] AS country_languages,
    -- YouTube's video categories, Zipf-skewed (weight 1/k).
    ['Entertainment', 'People & Blogs', 'Music', 'Gaming', 'Education', 'Howto & Style',
     'Comedy', 'Film & Animation', 'Science & Technology', 'Sports', 'News & Politics',
     'Travel & Events', 'Autos & Vehicles', 'Pets & Animals', 'Nonprofits & Activism'] AS categories,
    arrayCumSum(arrayMap(k -> 1. / k, range(1, 16))) AS category_cw,
    ['Tech', 'Kitchen', 'Gaming', 'Vlogs', 'Music', 'Comedy', 'Fitness', 'Beauty', 'Travel',
     'Kids', 'News', 'Cricket', 'Finance', 'Study', 'Cars'] AS topics,
    ['Desi', 'Daily', 'Epic', 'Simply', 'Crazy', 'Real', 'The', 'Mr', 'Happy', 'Urban'] AS prefixes,
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_' AS alphabet,
    (cityHash64({seed:UInt64}, n, 'yt_name1') + 0.5) / two64 AS u_name1,
    (cityHash64({seed:UInt64}, n, 'yt_name2') + 0.5) / two64 AS u_name2,
    (cityHash64({seed:UInt64}, n, 'yt_country') + 0.5) / two64 AS u_country,
    (cityHash64({seed:UInt64}, n, 'yt_nulls') + 0.5) / two64 AS u_nulls,
    (cityHash64({seed:UInt64}, n, 'yt_category') + 0.5) / two64 AS u_category,
    (cityHash64({seed:UInt64}, n, 'yt_subscribers') + 0.5) / two64 AS u_subscribers,
    (cityHash64({seed:UInt64}, n, 'yt_published') + 0.5) / two64 AS u_published,
    (cityHash64({seed:UInt64}, n, 'yt_tracked') + 0.5) / two64 AS u_tracked,
    (cityHash64({seed:UInt64}, n, 'yt_vidooly') + 0.5) / two64 AS u_vidooly,
    (cityHash64({seed:UInt64}, n, 'yt_misc') + 0.5) / two64 AS u_misc,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'yt_z1a') + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, n, 'yt_z1b') + 0.5) / two64) AS z_growth,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'yt_z1a') + 0.5) / two64))
        * sin(2 * pi() * (cityHash64({seed:UInt64}, n, 'yt_z1b') + 0.5) / two64) AS z_views,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'yt_z2a') + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, n, 'yt_z2b') + 0.5) / two64) AS z_cadence,
    sqrt(-2 * log((cityHash64({seed:UInt64}, n, 'yt_z2a') + 0.5) / two64))
        * sin(2 * pi() * (cityHash64({seed:UInt64}, n, 'yt_z2b') + 0.5) / two64) AS z_engagement,
    -- Pareto above 1,000 subscribers (median ~2,200).
    least(300e6, 1000 * pow(u_subscribers, -1 / 0.9)) AS subscribers_at_anchor,
    arrayElement(countries, arrayFirstIndex(c -> c >= u_country * country_cw[-1], country_cw)) AS home,
    concat(arrayElement(prefixes, 1 + toUInt32(u_name1 * 10)), ' ',
           arrayElement(topics, 1 + toUInt32(u_name2 * 15))) AS base_title,
    u_tracked < multiIf(subscribers_at_anchor >= 1e6, 0.5, subscribers_at_anchor >= 1e5, 0.25, 0.04) AS is_tracked
SELECT
    n,
    -- 'UC' + 22 characters of YouTube's channel-id alphabet, from a hash of n alone.
    concat('UC', arrayStringConcat(arrayMap(
        i -> substring(alphabet, 1 + toUInt8(cityHash64('yt_channel_id', n, i) % 64), 1),
        range(22)))) AS channel_id,
    concat(base_title, ' ', toString(n)) AS title,
    if(u_nulls < 0.2, NULL, concat('Welcome to ', base_title, '! New videos every week.')) AS description,
    if(u_nulls > 0.6, NULL, concat('@', lower(replaceAll(base_title, ' ', '')), toString(n))) AS custom_url,
    if(u_nulls BETWEEN 0.2 AND 0.6, NULL, home) AS country,
    home AS home_country,
    if(u_nulls > 0.75, NULL,
       if(u_misc < 0.4, 'en', arrayElement(country_languages, indexOf(countries, home)))) AS language,
    arrayElement(categories, arrayFirstIndex(c -> c >= u_category * category_cw[-1], category_cw)) AS category,
    {origin:DateTime64(3, 'UTC')} - toIntervalSecond(toInt64((30 + u_published * 4000) * day)) AS published_at,
    u_misc > 0.97 AS hidden_subscribers,
    subscribers_at_anchor AS subscribers,
    greatest(-0.3, least(0.6, 0.015 + 0.04 * z_growth)) AS growth,
    greatest(20, exp(5 + 0.5 * z_views)) AS views_per_sub,
    -- Views of a settled video relative to subscribers fall with channel size.
    subscribers_at_anchor * least(2, 0.8 * pow(subscribers_at_anchor, -0.12) * exp(0.6 * z_engagement)) AS video_views,
    0.03 * exp(0.3 * z_engagement) AS like_ratio,
    0.002 * exp(0.5 * z_views) AS comment_ratio,
    0.1 + 0.5 * u_name2 AS shorts_share,
    7 * day / greatest(0.1, least(14, 1.0 * exp(0.7 * z_cadence))) AS video_every,
    u_name1 * video_every AS video_phase,
    toUInt32(greatest(3, exp(4.5 + z_cadence))) AS video_base,
    multiIf(subscribers_at_anchor >= 1e6 OR is_tracked, day, 3 * day) AS scrape_every,
    u_name2 * scrape_every AS scrape_phase,
    is_tracked AS tracked,
    u_vidooly < 0.7 AS vidooly
FROM (SELECT number AS n FROM numbers({channels:UInt64}));
