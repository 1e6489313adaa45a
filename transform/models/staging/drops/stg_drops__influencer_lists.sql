{{ config(materialized='table', order_by='(brand_id, platform, handle)') }}
-- Every line of the influencer lists brands upload, as typed, with the file it came from.
select
    toUInt64(brand_id) as brand_id,
    handle as raw_handle,
    {{ normalize_handle('handle') }} as handle,
    toLowCardinality(lower(trimBoth(platform))) as platform,
    nullIf(trimBoth(note), '') as note,
    _file as file_name
from {{ s3_drop('influencer_lists/*.csv', structure='brand_id UInt64, handle String, platform String, note Nullable(String)') }}
