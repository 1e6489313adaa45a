-- The hourly marts add up to Beat's raw log: per source and endpoint, the requests, successes
-- and rate-limited requests of mart_scrape_success_hourly / mart_scrape_rate_limits_hourly over
-- the window equal a count of the raw table between the first hour and as_of.
with window_ as (
    select min(hour_start) as window_start, any(as_of) as as_of from {{ ref('mart_scrape_success_hourly') }}
),
raw as (
    select
        source,
        endpoint,
        count() as requests,
        countIf(status = 'success') as successes,
        countIf(error_class in ('RateLimited', 'QuotaExceeded')) as rate_limited
    from {{ source('beat', 'scrape_requests') }}
    where started_at >= (select window_start from window_) and started_at <= (select as_of from window_)
    group by source, endpoint
),
served as (
    select source, endpoint, sum(requests) as requests, sum(successes) as successes
    from {{ ref('mart_scrape_success_hourly') }}
    group by source, endpoint
),
limited as (
    select source, sum(rate_limited) as rate_limited
    from {{ ref('mart_scrape_rate_limits_hourly') }}
    group by source
)
select raw.source, raw.endpoint, 'requests or successes differ' as problem
from raw
full join served on served.source = raw.source and served.endpoint = raw.endpoint
where coalesce(raw.requests, 0) != coalesce(served.requests, 0) or coalesce(raw.successes, 0) != coalesce(served.successes, 0)
union all
select raw.source, '' as endpoint, 'rate-limited requests differ' as problem
from (select source, sum(rate_limited) as rate_limited from raw group by source) as raw
full join limited on limited.source = raw.source
where coalesce(raw.rate_limited, 0) != coalesce(limited.rate_limited, 0)
