-- One row per video, its latest metadata: latest() on the scrape time (the version), NULL
-- included (a language the owner cleared is unset now).
select
    video_id,
    any(channel_id) as channel_id,
    {{ latest('title') }} as title,
    min(published_at) as published_at,
    {{ latest('duration_seconds') }} as duration_seconds,
    {{ latest('category') }} as source_category,
    {{ latest('is_short') }} as is_short,
    {{ latest('made_for_kids') }} as made_for_kids,
    {{ latest('tags') }} as tags,
    {{ latest('default_language') }} as language,
    max(scraped_at) as last_scraped_at,
    max(_ingested_at) as ingested_at
from {{ source('youtube', 'videos') }}
group by video_id
