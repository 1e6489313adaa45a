-- One failed request, with whether a retry can help (rate limits, timeouts, proxies and server
-- errors pass; a missing profile, a login wall or a quota do not until something changes).
select
    request_id,
    source,
    endpoint,
    target_id,
    started_at,
    http_status,
    coalesce(error_class, 'Unknown') as error_class,
    error_class in ('RateLimited', 'Timeout', 'ProxyError', 'ServerError', 'BackendError') as is_retryable
from {{ ref('stg_beat__scrape_requests') }}
where not is_success
