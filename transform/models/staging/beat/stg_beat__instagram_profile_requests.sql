-- Requests to Instagram's profile endpoint, the target cast to the profile id it names.
select
    request_id,
    toUInt64(target_id) as profile_id,
    started_at,
    is_success,
    http_status,
    error_class,
    latency_ms
from {{ ref('stg_beat__scrape_requests') }}
where source = 'instagram' and endpoint = 'profile'
