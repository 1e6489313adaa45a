-- mart_scrape_health against Beat's whole raw log, recomputed here without the hourly rollup:
-- every source and endpoint the log has ever seen has a row, with its newest request, its
-- newest success and its requests and failures of the last 24 hours before as_of. Returns the
-- disagreements. It reads the whole log: the daily data-quality run's, not every monitoring
-- run's.
{{ config(tags=['data_quality']) }}
with as_of as (
    select max(started_at) as as_of from {{ source('beat', 'scrape_requests') }}
),
log as (
    select
        source,
        endpoint,
        max(started_at) as last_request_at,
        maxIf(started_at, status = 'success') as last_success_at,
        countIf(started_at > (select as_of from as_of) - interval 24 hour) as requests_24h,
        countIf(started_at > (select as_of from as_of) - interval 24 hour and status != 'success') as failures_24h
    from {{ source('beat', 'scrape_requests') }}
    group by source, endpoint
)
select l.source as source, l.endpoint as endpoint, 'differs from the log' as problem
from log as l
left join {{ ref('mart_scrape_health') }} as h on h.source = l.source and h.endpoint = l.endpoint
where h.last_request_at != l.last_request_at
   or h.last_success_at != l.last_success_at
   or h.requests_24h != l.requests_24h
   or h.failures_24h != l.failures_24h
union all
select toString(source), toString(endpoint), 'not in the log' as problem
from {{ ref('mart_scrape_health') }}
where (source, endpoint) not in (select source, endpoint from log)
