-- One row per comment, its latest observation (likes grow): latest() on the fetch time.
select
    comment_id,
    any(profile_id) as profile_id,
    any(post_id) as post_id,
    lower({{ latest('commenter_username') }}) as commenter_username,
    {{ latest('text') }} as text,
    min(commented_at) as commented_at,
    toUInt64({{ latest('likes') }}) as likes,
    max(scraped_at) as last_scraped_at,
    max(_ingested_at) as ingested_at
from {{ source('instagram', 'comments') }}
group by comment_id
