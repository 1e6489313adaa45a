-- YouTube data for one batch, computed from Beat's successful channel requests and the hidden
-- channel parameters in stir_seed. Parameters: seed, origin, lo, hi (see beat.sql).
-- The Data API path is steadier than Instagram's: 1% of deliveries late, 1% repeated.

TRUNCATE TABLE stir_seed.deliveries;

INSERT INTO stir_seed.deliveries
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    (cityHash64({seed:UInt64}, 'delivery', r.request_id) + 0.5) / two64 AS u_late,
    (cityHash64({seed:UInt64}, 'delay', r.request_id) + 0.5) / two64 AS u_delay,
    (cityHash64({seed:UInt64}, 'repeat', r.request_id) + 0.5) / two64 AS u_repeat,
    (cityHash64({seed:UInt64}, 'repeat_delay', r.request_id) + 0.5) / two64 AS u_repeat_delay,
    (toUnixTimestamp64Milli(r.finished_at) - toUnixTimestamp64Milli({origin:DateTime64(3, 'UTC')})) / 1000. AS t,
    t + if(u_late < 0.01, 3600 + u_delay * 1.9 * day, 2 + 28 * u_delay) AS first_s,
    if(copy = 0, first_s, first_s + 60 + u_repeat_delay * 6 * 3600) AS ingest_s
SELECT
    'youtube' AS source,
    r.request_id,
    c.n,
    r.finished_at AS scraped_at,
    t,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(ingest_s * 1000)) AS _ingested_at
FROM
(
    SELECT request_id, target_id, finished_at
    FROM raw_beat.scrape_requests
    WHERE source = 'youtube' AND endpoint = 'channel' AND status = 'success'
      AND started_at > {origin:DateTime64(3, 'UTC')} + toIntervalSecond(toInt64({lo:Float64}) - 3 * 86400)
      AND started_at <= {origin:DateTime64(3, 'UTC')} + toIntervalSecond(toInt64({hi:Float64}))
) AS r
INNER JOIN (SELECT n, channel_id FROM stir_seed.youtube_channels) AS c ON c.channel_id = r.target_id
ARRAY JOIN [0, 1] AS copy
WHERE (copy = 0 OR u_repeat < 0.01) AND ingest_s > {lo:Float64} AND ingest_s <= {hi:Float64};

-- Subscribers follow the channel's growth curve and, as the API returns them, are rounded to
-- three significant digits; hidden counts come back as NULL. A few channels hide their count
-- for good (hidden_subscribers); 8% more hide it from a day between the 10th and 85th of the
-- history, and half of those show it again 4 to 30 days later. The channels insert below uses
-- the same formulas.
INSERT INTO raw_youtube.channel_snapshots
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    (cityHash64({seed:UInt64}, c.n, 'yt_hide') + 0.5) / two64 AS u_hide,
    (cityHash64({seed:UInt64}, c.n, 'yt_unhide') + 0.5) / two64 AS u_unhide,
    if(u_hide < 0.08, (10 + 75 * u_hide / 0.08) * day, 1e12) AS hidden_from,
    if(u_unhide < 0.5, hidden_from + (4 + 26 * u_unhide / 0.5) * day, 1e12) AS hidden_until,
    c.hidden_subscribers OR (d.t >= hidden_from AND d.t < hidden_until) AS hidden,
    c.subscribers * exp(c.growth * (d.t - 90 * day) / (30 * day)) AS subscribers_t,
    pow(10, greatest(0, floor(log10(greatest(subscribers_t, 1))) - 2)) AS unit
SELECT
    c.channel_id,
    d.scraped_at,
    d.request_id,
    if(hidden, NULL, toUInt64(round(subscribers_t / unit) * unit)) AS subscribers,
    toUInt64(round(c.subscribers * c.views_per_sub
        * exp((0.02 + greatest(c.growth, 0)) * (d.t - 90 * day) / (30 * day)))) AS views,
    toUInt32(c.video_base + greatest(0, floor((d.t - c.video_phase + 30 * day) / c.video_every) + 1)) AS video_count,
    d._ingested_at
FROM stir_seed.deliveries AS d
INNER JOIN stir_seed.youtube_channels AS c ON c.n = d.n
WHERE d.source = 'youtube';

-- Channel metadata, once per channel and batch (the batch's latest scrape), with whether the
-- count was hidden at that scrape (the formulas of channel_snapshots above).
INSERT INTO raw_youtube.channels
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    (cityHash64({seed:UInt64}, c.n, 'yt_hide') + 0.5) / two64 AS u_hide,
    (cityHash64({seed:UInt64}, c.n, 'yt_unhide') + 0.5) / two64 AS u_unhide,
    if(u_hide < 0.08, (10 + 75 * u_hide / 0.08) * day, 1e12) AS hidden_from,
    if(u_unhide < 0.5, hidden_from + (4 + 26 * u_unhide / 0.5) * day, 1e12) AS hidden_until
SELECT
    c.channel_id,
    c.title,
    c.description,
    c.custom_url,
    c.country,
    c.language AS default_language,
    c.category,
    c.published_at,
    c.hidden_subscribers OR (d.last_t >= hidden_from AND d.last_t < hidden_until) AS hidden_subscriber_count,
    d.last_scraped_at AS scraped_at,
    d.last_request_id AS request_id,
    d.last_ingested_at AS _ingested_at
FROM
(
    SELECT n, max(scraped_at) AS last_scraped_at, max(t) AS last_t,
           argMax(request_id, scraped_at) AS last_request_id, max(_ingested_at) AS last_ingested_at
    FROM stir_seed.deliveries
    WHERE source = 'youtube'
    GROUP BY n
) AS d
INNER JOIN stir_seed.youtube_channels AS c ON c.n = d.n;

-- The videos a scrape sees: those published in the last 21 days, at most 15. Video j of a
-- channel is published at video_phase - 30 days + j * video_every (+ jitter); views approach
-- their final count with a 2-day time constant; Shorts get more views.
TRUNCATE TABLE stir_seed.video_observations;

INSERT INTO stir_seed.video_observations
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_' AS alphabet,
    c.video_phase - 30 * day + j * c.video_every
        + (cityHash64({seed:UInt64}, 'yt_video_jitter', c.channel_id, j) + 0.5) / two64 * 0.5 * c.video_every
        AS published_s,
    d.t - published_s AS age,
    sqrt(-2 * log((cityHash64({seed:UInt64}, 'yt_video_z_a', c.channel_id, j) + 0.5) / two64))
        * cos(2 * pi() * (cityHash64({seed:UInt64}, 'yt_video_z_b', c.channel_id, j) + 0.5) / two64) AS z_video,
    (cityHash64({seed:UInt64}, 'yt_video_kind', c.channel_id, j) + 0.5) / two64 AS u_kind,
    (cityHash64({seed:UInt64}, 'yt_video_off', c.channel_id, j) + 0.5) / two64 AS u_off,
    u_kind < c.shorts_share AS short,
    c.video_views * exp(0.9 * z_video - 0.405) * if(short, 3, 1) AS final_views,
    final_views * (1 - exp(-age / (2 * day))) AS views_now
SELECT
    c.channel_id,
    arrayStringConcat(arrayMap(
        i -> substring(alphabet, 1 + toUInt8(cityHash64('yt_video_id', c.channel_id, j, i) % 64), 1),
        range(11))) AS video_id,
    toUInt32(j) AS j,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(published_s * 1000)) AS published_at,
    short AS is_short,
    c.category,
    c.language,
    d.scraped_at,
    d.request_id,
    toUInt64(round(views_now)) AS views,
    if(u_off < 0.02, NULL, toUInt64(round(views_now * c.like_ratio * (0.7 + 0.6 * u_kind)))) AS likes,
    -- Made-for-kids videos have comments disabled.
    if(u_off > 0.97, NULL, toUInt64(round(views_now * c.comment_ratio * (0.7 + 0.6 * u_off)))) AS comments,
    d._ingested_at
FROM stir_seed.deliveries AS d
INNER JOIN stir_seed.youtube_channels AS c ON c.n = d.n
ARRAY JOIN arraySlice(arrayFilter(
    jj -> (c.video_phase - 30 * day + jj * c.video_every
           + (cityHash64({seed:UInt64}, 'yt_video_jitter', c.channel_id, jj) + 0.5) / two64 * 0.5 * c.video_every)
          BETWEEN d.t - 21 * day AND d.t,
    range(
        toUInt64(greatest(0, floor((d.t - c.video_phase + 9 * day) / c.video_every) - 1)),
        toUInt64(greatest(0, floor((d.t - c.video_phase + 30 * day) / c.video_every) + 1)))), -15) AS j
WHERE d.source = 'youtube';

INSERT INTO raw_youtube.video_snapshots
SELECT channel_id, video_id, scraped_at, request_id, views, likes, comments, _ingested_at
FROM stir_seed.video_observations;

INSERT INTO raw_youtube.videos
WITH
    ['Day in my life', 'I tried', 'Honest review:', 'Top 10', 'How to', 'Reacting to',
     'We finally', '24 hours in', 'Budget vs luxury', 'Explained:'] AS openers,
    ['the new phone', 'street food', 'Goa', 'my morning routine', 'this viral recipe',
     'the final match', 'a 100 rupee challenge', 'the exam week', 'our new house', 'the trailer'] AS subjects,
    ['vlog', 'shorts', 'review', 'tutorial', 'funny', 'india', 'trending', 'challenge'] AS tag_pool
SELECT
    channel_id,
    video_id,
    concat(arrayElement(openers, 1 + cityHash64('yt_title_a', video_id) % 10), ' ',
           arrayElement(subjects, 1 + cityHash64('yt_title_b', video_id) % 10),
           if(any(is_short), ' #shorts', '')) AS title,
    any(published_at),
    toUInt32(if(any(is_short), 10 + cityHash64('yt_duration', video_id) % 50,
                exp(6.4 + 0.7 * ((cityHash64('yt_duration', video_id) % 1000) / 1000. - 0.5) * 3))) AS duration_seconds,
    any(category),
    any(is_short),
    countIf(comments IS NULL) > 0 AND cityHash64('yt_kids', video_id) % 4 = 0 AS made_for_kids,
    arrayDistinct(arrayMap(i -> arrayElement(tag_pool, 1 + cityHash64('yt_tag', video_id, i) % 8),
             range(cityHash64('yt_tags', video_id) % 6))) AS tags,
    any(language) AS default_language,
    max(scraped_at),
    max(_ingested_at)
FROM stir_seed.video_observations
GROUP BY channel_id, video_id;
