-- The last-24-hour volume of mart_scrape_volume_vs_yesterday agrees with mart_scrape_health,
-- computed independently over the same window from the same as_of, for every source and
-- endpoint (and the SLO board covers every endpoint the health mart knows of that was active).
select h.source, h.endpoint, 'requests_24h differs' as problem
from {{ ref('mart_scrape_health') }} as h
left join {{ ref('mart_scrape_volume_vs_yesterday') }} as v on v.source = h.source and v.endpoint = h.endpoint
where h.requests_24h > 0 and (coalesce(v.requests_24h, 0) != h.requests_24h
    or v.successes_24h != h.requests_24h - h.failures_24h)
union all
select h.source, h.endpoint, 'missing from the SLO board' as problem
from {{ ref('mart_scrape_health') }} as h
left join {{ ref('mart_scrape_slo') }} as s on s.source = h.source and s.endpoint = h.endpoint
where h.requests_24h > 0 and coalesce(toString(s.source), '') = ''
