-- One row per post, its latest metadata: latest() on the scrape time (the table's version), so a
-- late delivery of an older scrape never wins, whether or not a merge has run; a caption the
-- owner deleted (NULL now) is NULL.
select
    post_id,
    any(profile_id) as profile_id,
    {{ latest('shortcode') }} as shortcode,
    {{ latest('media_type') }} as media_type,
    media_type in ('video', 'reel') as is_video,
    min(posted_at) as posted_at,
    {{ latest('caption') }} as caption,
    {{ latest('hashtags') }} as hashtags,
    {{ latest('is_paid_partnership') }} as is_paid_partnership,
    max(scraped_at) as last_scraped_at,
    max(_ingested_at) as ingested_at
from {{ source('instagram', 'posts') }}
group by post_id
