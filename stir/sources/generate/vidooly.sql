-- Vidooly's weekly estimates for one batch. Parameters: seed, origin, lo, hi (see beat.sql) and
-- channels (the world's channel count).
--
-- Vidooly delivers one bulk file a week (Mondays 02:00 UTC, counting from origin): every
-- channel it covers, with this week's estimates. It covers 70% of our channels and also
-- channels we never scrape (5% extra), and leaves fields empty where it has no estimate.

INSERT INTO raw_vidooly.channel_estimates
WITH
    18446744073709551616. AS two64,
    86400. AS day,
    ['IN', 'US', 'BR', 'ID', 'GB', 'MX', 'PK', 'PH', 'KR', 'JP', 'DE', 'CA', 'BD', 'AE', 'NP'] AS geo,
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_' AS alphabet,
    -- Vidooly's own category names for YouTube's.
    transform(w.category,
        ['Entertainment', 'People & Blogs', 'Music', 'Gaming', 'Education', 'Howto & Style', 'Comedy',
         'Film & Animation', 'Science & Technology', 'Sports', 'News & Politics', 'Travel & Events',
         'Autos & Vehicles', 'Pets & Animals', 'Nonprofits & Activism'],
        ['Entertainment', 'Vlogs', 'Music', 'Gaming', 'Education', 'Beauty & Fashion', 'Comedy',
         'Entertainment', 'Tech', 'Sports', 'News', 'Vlogs', 'Auto', 'Vlogs', 'Devotional'],
        'Entertainment') AS vidooly_category,
    (cityHash64({seed:UInt64}, 'vidooly', w.channel_id, week) + 0.5) / two64 AS u_week,
    (cityHash64({seed:UInt64}, 'vidooly_geo', w.channel_id) + 0.5) / two64 AS u_geo,
    7 * day * week + 2 * 3600 AS delivered_s,
    -- Monthly views: 30 days of a typical video's views at the channel's cadence, +-30%.
    w.video_views * (30 * day / w.video_every) * (0.7 + 0.6 * u_week) AS monthly_views,
    if(w.home_country IN ('US', 'GB', 'CA', 'DE', 'JP', 'KR'), 4., 0.8) AS cpm_usd,
    least(0.85, 0.5 + 0.35 * u_geo) AS home_share,
    arrayFilter(c -> c != w.home_country,
        arrayMap(i -> arrayElement(geo, 1 + cityHash64('vidooly_geo', w.channel_id, i) % 15), range(3))) AS others
SELECT
    w.channel_id,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64(delivered_s * 1000)) AS estimated_at,
    if(u_geo < 0.1, NULL, vidooly_category) AS category,
    if(u_week < 0.05, NULL, toUInt64(round(monthly_views))) AS estimated_monthly_views,
    if(u_week < 0.08, NULL, toDecimal64(round(monthly_views / 1000 * cpm_usd * 0.5, 2), 2)) AS estimated_monthly_earnings_low,
    if(u_week < 0.08, NULL, toDecimal64(round(monthly_views / 1000 * cpm_usd * 2, 2), 2)) AS estimated_monthly_earnings_high,
    mapFromArrays(
        arrayConcat([w.home_country], arrayDistinct(others)),
        arrayConcat([toFloat32(home_share)],
                     arrayMap(c -> toFloat32((1 - home_share) / length(arrayDistinct(others))), arrayDistinct(others)))) AS audience_countries,
    {origin:DateTime64(3, 'UTC')} + toIntervalMillisecond(toInt64((delivered_s + 600 * u_geo) * 1000)) AS _ingested_at
FROM
(
    SELECT channel_id, category, home_country, video_views, video_every
    FROM stir_seed.youtube_channels
    WHERE vidooly
    UNION ALL
    -- Channels outside our scrapes, with ids in the same form.
    SELECT
        concat('UC', arrayStringConcat(arrayMap(
            i -> substring('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 1 + toUInt8(cityHash64('yt_channel_id', number, i) % 64), 1),
            range(22)))) AS channel_id,
        'Entertainment' AS category,
        'IN' AS home_country,
        1000. * (1 + cityHash64({seed:UInt64}, 'vidooly_extra', number) % 100) AS video_views,
        7 * 86400. AS video_every
    FROM numbers({channels:UInt64}, toUInt64(ceil({channels:UInt64} * 0.05)))
) AS w
ARRAY JOIN range(
    toUInt64(greatest(0, ceil(({lo:Float64} - 7200) / (7 * 86400)))),
    toUInt64(greatest(0, floor(({hi:Float64} - 7200) / (7 * 86400)) + 1))) AS week
WHERE delivered_s + 600 * u_geo > {lo:Float64} AND delivered_s + 600 * u_geo <= {hi:Float64};
