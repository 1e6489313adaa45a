-- One row per (brand, platform, handle) the brand listed: lines typed twice collapse.
select
    brand_id,
    platform,
    handle,
    count() as times_listed,
    groupUniqArray(file_name) as file_names
from {{ ref('stg_drops__influencer_lists') }}
where handle != ''
group by brand_id, platform, handle
