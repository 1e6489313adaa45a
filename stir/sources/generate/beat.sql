-- Beat's request log for one batch: every request whose log line lands in the batch window.
--
-- Parameters: seed; origin (time zero, 90 days before the anchor); lo and hi, the batch window
-- as seconds after origin. A batch holds what was *ingested* in (lo, hi], so a request made just
-- before hi whose log ships after hi belongs to the next batch: batches never overlap and an
-- increment continues exactly where the last batch stopped.
--
-- Schedules are deterministic: entity e is scraped at phase + k * every (+-10% jitter) for
-- k = 0, 1, ...; the ARRAY JOIN only expands the few k that can fall in the window.

-- Instagram profile requests (the profile endpoint returns the counts and the latest posts).
-- Failures: a base rate with a mix of error classes, bursts of rate limiting in some hours,
-- and 404 for every request while an account is deleted: from deleted_from on, and for half of
-- the deleted accounts (reactivated) only until 2 to 16 days later.
INSERT INTO raw_beat.scrape_requests
WITH
    18446744073709551616. AS two64,
    {lo:Float64} AS lo,
    {hi:Float64} AS hi,
    ['RateLimited', 'Timeout', 'ProxyError', 'LoginRequired', 'ServerError', 'ParseError'] AS errors,
    arrayCumSum([35., 20, 15, 15, 10, 5]) AS error_cw,
    [429, 0, 502, 401, 500, 200] AS error_http,
    cityHash64({seed:UInt64}, 'ig_req', profile_id, k) AS id,
    (cityHash64(id, 'jitter') + 0.5) / two64 AS u_jitter,
    (cityHash64(id, 'fail') + 0.5) / two64 AS u_fail,
    (cityHash64(id, 'error') + 0.5) / two64 AS u_error,
    (cityHash64(id, 'ship') + 0.5) / two64 AS u_ship,
    sqrt(-2 * log((cityHash64(id, 'lat_a') + 0.5) / two64))
        * cos(2 * pi() * (cityHash64(id, 'lat_b') + 0.5) / two64) AS z_latency,
    -- A draw per profile (not per request), so every batch agrees on when it came back.
    (cityHash64({seed:UInt64}, profile_id, 'restored') + 0.5) / two64 AS u_restored,
    if(u_restored < 0.5, deleted_from + (2 + 14 * u_restored / 0.5) * 86400, 1e12) AS restored_from,
    scrape_phase + k * scrape_every + (u_jitter - 0.5) * 0.2 * scrape_every AS start_s,
    deleted_from IS NOT NULL AND start_s >= deleted_from AND start_s < restored_from AS gone,
    (cityHash64({seed:UInt64}, 'ig_burst', intDiv(toInt64(start_s), 3600)) + 0.5) / two64 < 0.04 AS burst,
    gone OR u_fail < if(burst, 0.5, 0.06) AS failed,
    arrayFirstIndex(c -> c >= u_error * error_cw[-1], error_cw) AS error_index,
    if(gone, 'NotFound', arrayElement(errors, error_index)) AS error,
    if(gone, 404, arrayElement(error_http, error_index)) AS http,
    toUInt32(multiIf(
        NOT failed, exp(7.5 + 0.5 * z_latency),
        error = 'Timeout', 30000,
        error = 'RateLimited', exp(5.5 + 0.3 * z_latency),
        exp(7 + 0.4 * z_latency))) AS latency_ms,
    start_s + latency_ms / 1000 AS finish_s,
    finish_s + 1 + 4 * u_ship AS ingest_s
SELECT
    id AS request_id,
    'instagram' AS source,
    'profile' AS endpoint,
    toString(profile_id) AS target_id,
    concat('beat-', toString(1 + cityHash64(id, 'worker') % 12)) AS worker,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(start_s * 1000)) AS started_at,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(finish_s * 1000)) AS finished_at,
    if(failed, 'failure', 'success') AS status,
    if(failed, if(http = 0, NULL, http), 200) AS http_status,
    if(failed, error, NULL) AS error_class,
    latency_ms,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(ingest_s * 1000)) AS _ingested_at
FROM stir_seed.instagram_profiles
ARRAY JOIN range(
    toUInt64(greatest(0, floor((lo - 120 - scrape_phase) / scrape_every) - 1)),
    toUInt64(greatest(0, ceil((hi - scrape_phase) / scrape_every) + 2))) AS k
WHERE start_s >= 0 AND ingest_s > lo AND ingest_s <= hi;

-- YouTube channel requests (the Data API: channel, statistics and recent videos). The API is
-- steadier than Instagram's web endpoints; its failures are mostly quota.
INSERT INTO raw_beat.scrape_requests
WITH
    18446744073709551616. AS two64,
    {lo:Float64} AS lo,
    {hi:Float64} AS hi,
    ['QuotaExceeded', 'ServerError', 'Timeout', 'BackendError'] AS errors,
    arrayCumSum([50., 25, 15, 10]) AS error_cw,
    [403, 500, 0, 503] AS error_http,
    cityHash64({seed:UInt64}, 'yt_req', channel_id, k) AS id,
    (cityHash64(id, 'jitter') + 0.5) / two64 AS u_jitter,
    (cityHash64(id, 'fail') + 0.5) / two64 AS u_fail,
    (cityHash64(id, 'error') + 0.5) / two64 AS u_error,
    (cityHash64(id, 'ship') + 0.5) / two64 AS u_ship,
    sqrt(-2 * log((cityHash64(id, 'lat_a') + 0.5) / two64))
        * cos(2 * pi() * (cityHash64(id, 'lat_b') + 0.5) / two64) AS z_latency,
    scrape_phase + k * scrape_every + (u_jitter - 0.5) * 0.2 * scrape_every AS start_s,
    u_fail < 0.02 AS failed,
    arrayFirstIndex(c -> c >= u_error * error_cw[-1], error_cw) AS error_index,
    arrayElement(errors, error_index) AS error,
    arrayElement(error_http, error_index) AS http,
    toUInt32(multiIf(
        NOT failed, exp(6.8 + 0.4 * z_latency),
        error = 'Timeout', 30000,
        exp(5.8 + 0.3 * z_latency))) AS latency_ms,
    start_s + latency_ms / 1000 AS finish_s,
    finish_s + 1 + 4 * u_ship AS ingest_s
SELECT
    id AS request_id,
    'youtube' AS source,
    'channel' AS endpoint,
    channel_id AS target_id,
    concat('beat-', toString(1 + cityHash64(id, 'worker') % 12)) AS worker,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(start_s * 1000)) AS started_at,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(finish_s * 1000)) AS finished_at,
    if(failed, 'failure', 'success') AS status,
    if(failed, if(http = 0, NULL, http), 200) AS http_status,
    if(failed, error, NULL) AS error_class,
    latency_ms,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(ingest_s * 1000)) AS _ingested_at
FROM stir_seed.youtube_channels
ARRAY JOIN range(
    toUInt64(greatest(0, floor((lo - 120 - scrape_phase) / scrape_every) - 1)),
    toUInt64(greatest(0, ceil((hi - scrape_phase) / scrape_every) + 2))) AS k
WHERE start_s >= 0 AND ingest_s > lo AND ingest_s <= hi;

-- Instagram comment fetches: after a successful scrape of a tracked public profile, Beat fetches
-- the comments of its newest post (if it is under 14 days old) half of the time, 5-60 s later.
-- The newest post comes from the same posting schedule as generate/instagram.sql.
INSERT INTO raw_beat.scrape_requests
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    {lo:Float64} AS lo,
    {hi:Float64} AS hi,
    ['RateLimited', 'LoginRequired', 'Timeout', 'ServerError'] AS errors,
    arrayCumSum([40., 35, 15, 10]) AS error_cw,
    [429, 401, 0, 500] AS error_http,
    (toUnixTimestamp64Milli(r.finished_at) - toUnixTimestamp64Milli({origin:DateTime64(3, 'UTC')})) / 1000. AS t,
    toInt64(floor((t - p.post_phase + 30 * day) / p.post_every)) AS j_nominal,
    p.post_phase - 30 * day + j_nominal * p.post_every
        + (cityHash64({seed:UInt64}, 'ig_post_jitter', p.profile_id, j_nominal) + 0.5) / two64 * 0.5 * p.post_every
        AS nominal_posted,
    if(nominal_posted <= t, j_nominal, j_nominal - 1) AS j,
    p.post_phase - 30 * day + j * p.post_every
        + (cityHash64({seed:UInt64}, 'ig_post_jitter', p.profile_id, j) + 0.5) / two64 * 0.5 * p.post_every
        AS posted,
    cityHash64({seed:UInt64}, 'ig_comments_req', r.request_id) AS id,
    (cityHash64(id, 'pick') + 0.5) / two64 AS u_pick,
    (cityHash64(id, 'fail') + 0.5) / two64 AS u_fail,
    (cityHash64(id, 'error') + 0.5) / two64 AS u_error,
    (cityHash64(id, 'ship') + 0.5) / two64 AS u_ship,
    (cityHash64(id, 'latency') + 0.5) / two64 AS u_latency,
    t + 5 + 55 * u_pick AS start_s,
    u_fail < 0.1 AS failed,
    arrayFirstIndex(c -> c >= u_error * error_cw[-1], error_cw) AS error_index,
    arrayElement(errors, error_index) AS error,
    arrayElement(error_http, error_index) AS http,
    toUInt32(multiIf(NOT failed, 800 + 2500 * u_latency, error = 'Timeout', 30000, 200 + 400 * u_latency)) AS latency_ms,
    start_s + latency_ms / 1000 AS finish_s,
    finish_s + 1 + 4 * u_ship AS ingest_s
SELECT
    id AS request_id,
    'instagram' AS source,
    'comments' AS endpoint,
    toString(p.profile_id * 100000 + j) AS target_id,
    concat('beat-', toString(1 + cityHash64(id, 'worker') % 12)) AS worker,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(start_s * 1000)) AS started_at,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(finish_s * 1000)) AS finished_at,
    if(failed, 'failure', 'success') AS status,
    if(failed, if(http = 0, NULL, http), 200) AS http_status,
    if(failed, error, NULL) AS error_class,
    latency_ms,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(ingest_s * 1000)) AS _ingested_at
FROM
(
    SELECT request_id, toUInt64(target_id) - 1000000000 AS n, finished_at
    FROM raw_beat.scrape_requests
    WHERE source = 'instagram' AND endpoint = 'profile' AND status = 'success'
      AND started_at > {origin:DateTime64(3, 'UTC')} + toIntervalSecond(toInt64({lo:Float64}) - 600)
      AND started_at <= {origin:DateTime64(3, 'UTC')} + toIntervalSecond(toInt64({hi:Float64}))
) AS r
INNER JOIN stir_seed.instagram_profiles AS p ON p.n = r.n
WHERE p.tracked
  AND NOT (p.is_private OR (p.private_from IS NOT NULL AND t >= p.private_from))
  AND j >= 0 AND t - posted <= 14 * day
  AND u_pick < 0.5
  AND ingest_s > lo AND ingest_s <= hi;
