-- Instagram data for one batch, computed from Beat's successful profile requests (a scrape
-- delivers data only when it succeeded) and the hidden profile parameters in stir_seed.
--
-- Parameters: seed, origin, lo, hi (see beat.sql).
--
-- Delivery: a scrape's data reaches ClickHouse 2-30 s after the request finished, 3% of them
-- 1 hour to 2 days late (a backed-up queue), and 2% are delivered a second time 1 minute to 6
-- hours later (at-least-once delivery). Rows land in the batch whose window holds their
-- ingestion time, so late rows show up in a later batch than their scrape.

TRUNCATE TABLE stir_seed.deliveries;

INSERT INTO stir_seed.deliveries
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    (cityHash64({seed:UInt64}, 'delivery', request_id) + 0.5) / two64 AS u_late,
    (cityHash64({seed:UInt64}, 'delay', request_id) + 0.5) / two64 AS u_delay,
    (cityHash64({seed:UInt64}, 'repeat', request_id) + 0.5) / two64 AS u_repeat,
    (cityHash64({seed:UInt64}, 'repeat_delay', request_id) + 0.5) / two64 AS u_repeat_delay,
    t + if(u_late < 0.03, 3600 + u_delay * 1.9 * day, 2 + 28 * u_delay) AS first_s,
    if(copy = 0, first_s, first_s + 60 + u_repeat_delay * 6 * 3600) AS ingest_s
SELECT
    'instagram' AS source,
    request_id,
    n,
    finished_at AS scraped_at,
    t,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(ingest_s * 1000)) AS _ingested_at
FROM
(
    SELECT
        request_id,
        toUInt64(target_id) - 1000000000 AS n,
        finished_at,
        (toUnixTimestamp64Milli(finished_at) - toUnixTimestamp64Milli({origin:DateTime64(3, 'UTC')})) / 1000. AS t
    FROM raw_beat.scrape_requests
    WHERE source = 'instagram' AND endpoint = 'profile' AND status = 'success'
      AND started_at > {origin:DateTime64(3, 'UTC')} + toIntervalSecond(toInt64({lo:Float64}) - 3 * 86400)
      AND started_at <= {origin:DateTime64(3, 'UTC')} + toIntervalSecond(toInt64({hi:Float64}))
)
ARRAY JOIN [0, 1] AS copy
WHERE (copy = 0 OR u_repeat < 0.02) AND ingest_s > {lo:Float64} AND ingest_s <= {hi:Float64};

-- The profile's counts at scrape time t: followers follow the profile's growth curve (with a
-- one-off jump for a few viral profiles) and a little scrape-to-scrape noise; media_count grows
-- with every post.
INSERT INTO raw_instagram.account_snapshots
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    (cityHash64({seed:UInt64}, 'ig_snapshot', d.request_id) + 0.5) / two64 AS u_noise,
    p.followers * exp(p.growth * (d.t - 90 * day) / (30 * day))
        * if(d.t >= p.jump_at, p.jump, 1) * (1 + 0.004 * (u_noise - 0.5)) AS followers_t
SELECT
    p.profile_id,
    d.scraped_at,
    d.request_id,
    p.username,
    p.full_name,
    p.biography,
    p.external_url,
    -- The API sometimes leaves the category out.
    if(u_noise < 0.02, NULL, p.category) AS category,
    p.country,
    p.language,
    toUInt64(round(followers_t)) AS followers,
    toUInt32(p.following + floor(d.t / (20 * day))) AS following,
    toUInt32(p.media_base + greatest(0, floor((d.t - p.post_phase + 30 * day) / p.post_every) + 1)) AS media_count,
    p.is_verified,
    p.is_private OR (p.private_from IS NOT NULL AND d.t >= p.private_from) AS is_private,
    p.is_business,
    d._ingested_at
FROM stir_seed.deliveries AS d
INNER JOIN stir_seed.instagram_profiles AS p ON p.n = d.n
WHERE d.source = 'instagram';

-- The posts a scrape sees: the profile's latest 12 posts, of which Beat keeps those under 14
-- days old (older metrics have settled). Post j of a profile is published at
-- post_phase - 30 days + j * post_every (+ jitter); likes approach their final count with an
-- 18-hour time constant; the final count is followers x engagement x a log-normal post effect.
-- Likes are hidden on some posts from the start (hides_likes) and on 4% more from 1 to 8 days
-- after publication, when the owner turns the count off later: NULL from then on.
-- Private profiles show no posts. The same formulas feed the comments below.
TRUNCATE TABLE stir_seed.post_observations;

INSERT INTO stir_seed.post_observations
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    p.post_phase - 30 * day + j * p.post_every
        + (cityHash64({seed:UInt64}, 'ig_post_jitter', p.profile_id, j) + 0.5) / two64 * 0.5 * p.post_every
        AS posted_s,
    d.t - posted_s AS age,
    sqrt(-2 * log((cityHash64({seed:UInt64}, 'ig_post_z_a', p.profile_id, j) + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, 'ig_post_z_b', p.profile_id, j) + 0.5) / two64) AS z_post,
    (cityHash64({seed:UInt64}, 'ig_post_type', p.profile_id, j) + 0.5) / two64 AS u_type,
    (cityHash64({seed:UInt64}, 'ig_post_cr', p.profile_id, j) + 0.5) / two64 AS u_cr,
    (cityHash64({seed:UInt64}, 'ig_post_off', p.profile_id, j) + 0.5) / two64 AS u_off,
    (cityHash64({seed:UInt64}, 'ig_post_views', p.profile_id, j) + 0.5) / two64 AS u_views,
    (cityHash64({seed:UInt64}, 'ig_post_hide_later', p.profile_id, j) + 0.5) / two64 AS u_hide_later,
    posted_s + if(u_hide_later < 0.04, (1 + 7 * u_hide_later / 0.04) * day, 1e12) AS likes_hidden_from,
    p.followers * p.engagement * exp(0.7 * z_post - 0.245) AS final_likes,
    final_likes * p.comment_ratio * (0.8 + 0.4 * u_cr) AS final_comments,
    1 - exp(-age / (18 * 3600)) AS settled,
    multiIf(
        u_type < p.video_share * 0.7, 'reel',
        u_type < p.video_share, 'video',
        u_type < p.video_share + (1 - p.video_share) * 0.35, 'carousel',
        'image') AS kind
SELECT
    p.profile_id,
    p.profile_id * 100000 + j AS post_id,
    toUInt32(j) AS j,
    -- Instagram shortcodes: 11 characters of URL-safe base64.
    substring(replaceAll(replaceAll(base64Encode(reinterpretAsString(cityHash64('ig_shortcode', p.profile_id, j))), '+', '-'), '/', '_'), 1, 11) AS shortcode,
    kind AS media_type,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(posted_s * 1000)) AS posted_at,
    (cityHash64({seed:UInt64}, 'ig_post_paid', p.profile_id, j) + 0.5) / two64 < if(p.tracked, 0.12, 0.04) AS is_paid_partnership,
    d.scraped_at,
    d.request_id,
    if(u_off < p.hides_likes OR d.t >= likes_hidden_from, NULL, toUInt64(round(final_likes * settled))) AS likes,
    if(u_off > 0.98, NULL, toUInt64(round(final_comments * settled))) AS comments,
    if(kind IN ('reel', 'video'), toUInt64(round(final_likes * settled * (8 + 12 * u_views))), NULL) AS views,
    d._ingested_at
FROM stir_seed.deliveries AS d
INNER JOIN stir_seed.instagram_profiles AS p ON p.n = d.n
ARRAY JOIN arraySlice(arrayFilter(
    jj -> (p.post_phase - 30 * day + jj * p.post_every
           + (cityHash64({seed:UInt64}, 'ig_post_jitter', p.profile_id, jj) + 0.5) / two64 * 0.5 * p.post_every)
          BETWEEN d.t - 14 * day AND d.t,
    range(
        toUInt64(greatest(0, floor((d.t - p.post_phase + 16 * day) / p.post_every) - 1)),
        toUInt64(greatest(0, floor((d.t - p.post_phase + 30 * day) / p.post_every) + 1)))), -12) AS j
WHERE d.source = 'instagram'
  AND NOT (p.is_private OR (p.private_from IS NOT NULL AND d.t >= p.private_from));

INSERT INTO raw_instagram.post_snapshots
SELECT profile_id, post_id, scraped_at, request_id, likes, comments, views, _ingested_at
FROM stir_seed.post_observations;

-- Post metadata, once per post and batch: the latest observation in the batch wins.
INSERT INTO raw_instagram.posts
WITH
    ['#ootd', '#travel', '#foodie', '#fitness', '#skincare', '#reels', '#love', '#instagood',
     '#mumbai', '#delhi', '#style', '#makeup', '#gaming', '#tech', '#music', '#art'] AS tags,
    ['New drop is live', 'Weekend mood', 'Behind the scenes', 'Tried this today',
     'Can''t stop thinking about this', 'Swipe to see more', 'Link in bio', 'Big news!'] AS phrases
SELECT
    post_id,
    profile_id,
    any(shortcode),
    any(media_type),
    any(posted_at),
    -- A caption is missing on some posts.
    if(cityHash64('ig_caption', post_id) % 10 = 0, NULL,
       arrayElement(phrases, 1 + cityHash64('ig_phrase', post_id) % 8)) AS caption,
    arrayDistinct(arrayMap(i -> arrayElement(tags, 1 + cityHash64('ig_tag', post_id, i) % 16),
             range(cityHash64('ig_tags', post_id) % 5))) AS hashtags,
    any(is_paid_partnership),
    max(scraped_at) AS scraped_at,
    max(_ingested_at) AS _ingested_at
FROM stir_seed.post_observations
GROUP BY profile_id, post_id;

-- Comments, from Beat's successful comment fetches: a fetch returns the post's 20 newest
-- comments. Comment c of a post is written when the post's comment curve reaches c (the same
-- curve as post_observations' comments), so fetches agree with the snapshots' counts.
INSERT INTO raw_instagram.comments
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    ['Love this!', 'So beautiful', 'Where is this?', 'Need this', 'Amazing work',
     'Goals!', 'Wow', 'Collab?', 'This made my day', 'Obsessed', 'Price please?', 'Fire!'] AS texts,
    ['', ' ❤️', ' 😍', ' 🔥', ' 🙌', ' 😂'] AS emoji,
    intDiv(r.post_id, 100000) AS profile_id,
    r.post_id % 100000 AS j,
    (toUnixTimestamp64Milli(r.finished_at) - toUnixTimestamp64Milli({origin:DateTime64(3, 'UTC')})) / 1000. AS t,
    p.post_phase - 30 * day + j * p.post_every
        + (cityHash64({seed:UInt64}, 'ig_post_jitter', profile_id, j) + 0.5) / two64 * 0.5 * p.post_every
        AS posted_s,
    sqrt(-2 * log((cityHash64({seed:UInt64}, 'ig_post_z_a', profile_id, j) + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, 'ig_post_z_b', profile_id, j) + 0.5) / two64) AS z_post,
    (cityHash64({seed:UInt64}, 'ig_post_cr', profile_id, j) + 0.5) / two64 AS u_cr,
    (cityHash64({seed:UInt64}, 'ig_post_off', profile_id, j) + 0.5) / two64 AS u_off,
    p.followers * p.engagement * exp(0.7 * z_post - 0.245) * p.comment_ratio * (0.8 + 0.4 * u_cr) AS final_comments,
    toUInt64(round(final_comments * (1 - exp(-(t - posted_s) / (18 * 3600))))) AS comments_now,
    cityHash64({seed:UInt64}, 'ig_comment', r.post_id, c) AS comment_key,
    (cityHash64({seed:UInt64}, 'comment_delay', r.request_id) + 0.5) / two64 AS u_delay,
    t + 2 + 28 * u_delay AS ingest_s
SELECT
    profile_id,
    r.post_id AS post_id,
    cityHash64('ig_comment_id', r.post_id, c) AS comment_id,
    concat(arrayElement(['aarav', 'priya', 'sam', 'lena', 'kabir', 'meera', 'tom', 'nina'], 1 + comment_key % 8),
           '_', lower(hex(toUInt16(comment_key % 65536)))) AS commenter_username,
    concat(arrayElement(texts, 1 + intDiv(comment_key, 8) % 12), arrayElement(emoji, 1 + intDiv(comment_key, 96) % 6)) AS text,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(
        (posted_s - 18 * 3600 * log(1 - least(0.999999, (c + 0.5) / final_comments))) * 1000)) AS commented_at,
    toUInt32(floor(pow((cityHash64(comment_key, 'likes') + 0.5) / two64, -1.5)) - 1) AS likes,
    r.finished_at AS scraped_at,
    r.request_id,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(ingest_s * 1000)) AS _ingested_at
FROM
(
    SELECT request_id, toUInt64(target_id) AS post_id, finished_at
    FROM raw_beat.scrape_requests
    WHERE source = 'instagram' AND endpoint = 'comments' AND status = 'success'
      AND started_at > {origin:DateTime64(3, 'UTC')} + toIntervalSecond(toInt64({lo:Float64}) - 600)
      AND started_at <= {origin:DateTime64(3, 'UTC')} + toIntervalSecond(toInt64({hi:Float64}))
) AS r
INNER JOIN stir_seed.instagram_profiles AS p ON p.n = intDiv(r.post_id, 100000) - 1000000000
ARRAY JOIN range(toUInt64(greatest(0, toInt64(comments_now) - 20)), comments_now) AS c
WHERE u_off <= 0.98 AND ingest_s > {lo:Float64} AND ingest_s <= {hi:Float64};
