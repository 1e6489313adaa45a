-- One row per channel, its latest metadata: latest() on the scrape time (the version). Every
-- field is the newest scrape's, NULL included: a description, URL, country or language the
-- owner cleared is gone, and hidden_subscriber_count says whether the count is hidden now.
select
    channel_id,
    {{ latest('title') }} as title,
    {{ latest('description') }} as description,
    {{ latest('custom_url') }} as custom_url,
    {{ latest('country') }} as country,
    {{ latest('default_language') }} as language,
    {{ latest('category') }} as source_category,
    min(published_at) as published_at,
    {{ latest('hidden_subscriber_count') }} as hidden_subscriber_count,
    max(scraped_at) as last_scraped_at,
    max(_ingested_at) as ingested_at
from {{ source('youtube', 'channels') }}
group by channel_id
