-- One successful profile scrape per row, (profile_id, scraped_at). A repeated delivery is
-- byte-identical and shares the key: FINAL collapses it (the table is a snapshot source).
select
    profile_id,
    scraped_at,
    request_id,
    lower(username) as username,
    full_name,
    biography,
    external_url,
    category as source_category,
    country,
    language,
    followers,
    toUInt64(following) as following,
    toUInt64(media_count) as posts_count,
    is_verified,
    is_private,
    is_business,
    _ingested_at as ingested_at
from {{ source('instagram', 'account_snapshots') }} final
