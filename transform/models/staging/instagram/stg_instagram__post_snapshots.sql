-- One post seen by one scrape, (post_id, scraped_at): likes, comments and views as they grow.
-- A snapshot source: repeats share the key and FINAL collapses them.
select
    profile_id,
    post_id,
    scraped_at,
    request_id,
    likes,
    comments,
    views,
    _ingested_at as ingested_at
from {{ source('instagram', 'post_snapshots') }} final
