-- One row per (video, tag): the latest tag array of each video, unnested and normalised.
select distinct
    video_id,
    channel_id,
    lower(trimBoth(tag)) as tag
from {{ ref('stg_youtube__videos') }}
array join tags as tag
where trimBoth(tag) != ''
