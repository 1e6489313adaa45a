-- One profile the app follows; platform_id is the Instagram profile id (as text) or the YouTube
-- channel id, and profile_key names a profile the same way across all marts.
select
    id as tracked_profile_id,
    platform,
    platform_id,
    concat(platform, ':', platform_id) as profile_key,
    lower(username) as username,
    created_at,
    updated_at
from {{ source('coffee', 'tracked_profiles') }} final
