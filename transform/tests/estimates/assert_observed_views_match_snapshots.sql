-- The observed monthly views of each channel equal a recomputation from the raw channel
-- snapshots: (views at the newest scrape − views at the newest scrape at or before as_of − 30
-- days, else the first scrape) / days between them x 30, as_of being the newest scrape of any
-- channel. Returns the channels that differ by more than 1e-6 relative.
with snapshots as (
    select channel_id, scraped_at, views from {{ source('youtube', 'channel_snapshots') }} final
),
cutoff as (
    select max(scraped_at) - interval 30 day as cutoff from snapshots
),
ends as (
    select
        channel_id,
        argMax(views, scraped_at) as v1,
        max(scraped_at) as t1,
        if(countIf(scraped_at <= (select cutoff from cutoff)) > 0,
           argMaxIf(views, scraped_at, scraped_at <= (select cutoff from cutoff)), argMin(views, scraped_at)) as v0,
        if(countIf(scraped_at <= (select cutoff from cutoff)) > 0,
           maxIf(scraped_at, scraped_at <= (select cutoff from cutoff)), min(scraped_at)) as t0
    from snapshots
    group by channel_id
),
expected as (
    select
        channel_id,
        (toUnixTimestamp64Milli(t1) - toUnixTimestamp64Milli(t0)) / 86400000 as days,
        if(days < 7, NULL, (toFloat64(v1) - toFloat64(v0)) / days * 30) as monthly_views
    from ends
)
select a.channel_id, a.observed_monthly_views, e.monthly_views
from {{ ref('mart_vidooly_estimate_accuracy') }} as a
left join expected as e on e.channel_id = a.channel_id
where (a.observed_monthly_views is null) != (e.monthly_views is null)
   or abs(a.observed_monthly_views - e.monthly_views) > 1e-6 * greatest(1, abs(e.monthly_views))
