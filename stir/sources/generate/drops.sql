-- Files dropped in the S3 staging bucket, written with ClickHouse's s3() table function (the
-- staging models read them back the same way). Run by the base seed only.
-- Parameters: seed; drops, the URL of the drops folder (endpoint/bucket/prefix/drops, path
-- style); key_id and secret, the S3 credentials (parameters, so they never appear in SQL text).

-- The category taxonomy: every category label a source uses, mapped to Stir's categories.
INSERT INTO FUNCTION s3(concat({drops:String}, '/taxonomy/categories.csv'), {key_id:String}, {secret:String}, 'CSVWithNames')
SELECT t.1 AS source, t.2 AS source_category, t.3 AS category, t.4 AS category_group
FROM
(
    SELECT arrayJoin([
        ('instagram', 'Digital creator', 'lifestyle', 'lifestyle'),
        ('instagram', 'Personal blog', 'lifestyle', 'lifestyle'),
        ('instagram', 'Public figure', 'entertainment', 'entertainment'),
        ('instagram', 'Fashion model', 'fashion', 'style'),
        ('instagram', 'Artist', 'art', 'creative'),
        ('instagram', 'Health/beauty', 'beauty', 'style'),
        ('instagram', 'Video creator', 'entertainment', 'entertainment'),
        ('instagram', 'Musician/band', 'music', 'entertainment'),
        ('instagram', 'Blogger', 'lifestyle', 'lifestyle'),
        ('instagram', 'Gamer', 'gaming', 'entertainment'),
        ('instagram', 'Athlete', 'sports', 'health'),
        ('instagram', 'Chef', 'food', 'lifestyle'),
        ('instagram', 'Photographer', 'art', 'creative'),
        ('instagram', 'Entrepreneur', 'business', 'knowledge'),
        ('instagram', 'Comedian', 'comedy', 'entertainment'),
        ('instagram', 'Fitness trainer', 'fitness', 'health'),
        ('instagram', 'Education', 'education', 'knowledge'),
        ('instagram', 'Travel company', 'travel', 'lifestyle'),
        ('instagram', 'Entertainment website', 'entertainment', 'entertainment'),
        ('instagram', 'Shopping & retail', 'fashion', 'style'),
        ('youtube', 'Entertainment', 'entertainment', 'entertainment'),
        ('youtube', 'People & Blogs', 'lifestyle', 'lifestyle'),
        ('youtube', 'Music', 'music', 'entertainment'),
        ('youtube', 'Gaming', 'gaming', 'entertainment'),
        ('youtube', 'Education', 'education', 'knowledge'),
        ('youtube', 'Howto & Style', 'beauty', 'style'),
        ('youtube', 'Comedy', 'comedy', 'entertainment'),
        ('youtube', 'Film & Animation', 'entertainment', 'entertainment'),
        ('youtube', 'Science & Technology', 'tech', 'knowledge'),
        ('youtube', 'Sports', 'sports', 'health'),
        ('youtube', 'News & Politics', 'news', 'knowledge'),
        ('youtube', 'Travel & Events', 'travel', 'lifestyle'),
        ('youtube', 'Autos & Vehicles', 'auto', 'lifestyle'),
        ('youtube', 'Pets & Animals', 'pets', 'lifestyle'),
        ('youtube', 'Nonprofits & Activism', 'causes', 'knowledge'),
        ('vidooly', 'Entertainment', 'entertainment', 'entertainment'),
        ('vidooly', 'Vlogs', 'lifestyle', 'lifestyle'),
        ('vidooly', 'Music', 'music', 'entertainment'),
        ('vidooly', 'Gaming', 'gaming', 'entertainment'),
        ('vidooly', 'Education', 'education', 'knowledge'),
        ('vidooly', 'Beauty & Fashion', 'beauty', 'style'),
        ('vidooly', 'Comedy', 'comedy', 'entertainment'),
        ('vidooly', 'Tech', 'tech', 'knowledge'),
        ('vidooly', 'Sports', 'sports', 'health'),
        ('vidooly', 'News', 'news', 'knowledge'),
        ('vidooly', 'Auto', 'auto', 'lifestyle'),
        ('vidooly', 'Devotional', 'causes', 'knowledge')
    ]) AS t
)
ORDER BY source, source_category
SETTINGS s3_truncate_on_insert = 1;

-- Influencer lists that brands upload (one CSV per brand, for four in ten of the first 250
-- brands: every file is a separate S3 upload with its own buffers, so their number is capped
-- whatever the scale): handles as people type them (an @, a profile URL, stray capitals and
-- spaces), mostly the brand's collection members, a few handles Stir has never seen, and some
-- lines twice.
INSERT INTO FUNCTION s3(concat({drops:String}, '/influencer_lists/brand_{_partition_id}.csv'), {key_id:String}, {secret:String}, 'CSVWithNames')
PARTITION BY brand_id
WITH
    cityHash64({seed:UInt64}, 'list_line', brand_id, raw_handle, line) AS h
SELECT
    brand_id,
    multiIf(
        h % 10 < 4, raw_handle,
        h % 10 < 6, concat('@', raw_handle),
        h % 10 < 8, concat(if(platform = 'instagram', 'https://www.instagram.com/', 'https://www.youtube.com/'), raw_handle, '/'),
        h % 10 < 9, upper(raw_handle),
        concat(' ', raw_handle, ' ')) AS handle,
    platform,
    if(h % 7 = 0, '', 'shortlist') AS note
FROM
(
    SELECT cl.brand_id AS brand_id, replaceAll(t.username, '@', '') AS raw_handle, t.platform AS platform
    FROM raw_coffee.collection_members AS m
    INNER JOIN raw_coffee.collections AS cl ON cl.id = m.collection_id
    INNER JOIN raw_coffee.tracked_profiles AS t ON t.id = m.tracked_profile_id
    WHERE cl.brand_id <= 250 AND (cityHash64({seed:UInt64}, 'uploads_list', cl.brand_id) % 10) < 4
    UNION ALL
    SELECT b.id, concat('unknown_creator_', lower(hex(cityHash64({seed:UInt64}, 'unknown', b.id, extra.number) % 1000000))), 'instagram'
    FROM raw_coffee.brands AS b
    CROSS JOIN numbers(3) AS extra
    WHERE b.id <= 250 AND (cityHash64({seed:UInt64}, 'uploads_list', b.id) % 10) < 4
)
ARRAY JOIN if(cityHash64({seed:UInt64}, 'twice', brand_id, raw_handle) % 20 = 0, [0, 1], [0]) AS line
ORDER BY brand_id, raw_handle, line
SETTINGS s3_truncate_on_insert = 1;
