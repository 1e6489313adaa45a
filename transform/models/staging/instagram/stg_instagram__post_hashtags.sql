-- One row per (post, hashtag): the latest hashtag array of each post, unnested and normalised.
select distinct
    post_id,
    profile_id,
    lower(trimLeft(hashtag, '#')) as hashtag
from {{ ref('stg_instagram__posts') }}
array join hashtags as hashtag
where hashtag != ''
