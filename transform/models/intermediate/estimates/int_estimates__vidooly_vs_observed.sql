{{ config(materialized='table', order_by='channel_id', tags=['profile-ranking']) }}
-- One row per YouTube channel that we scrape and Vidooly estimates: Vidooly's newest estimate
-- beside what we observed. Observed monthly views are the growth of the channel's lifetime
-- views between its latest snapshot and the latest one at or before as_of - 30 days (else its
-- first snapshot, if at least 7 days earlier), scaled to 30 days; the error of the estimate is
-- relative to that (growth_pct(estimate, observed)) and as |ln(estimate / observed)|.
with snapshots as (
    select * from {{ ref('stg_youtube__channel_snapshots') }}
),
as_of as (
    select max(scraped_at) as as_of from snapshots
),
windows as (
    select
        channel_id,
        -- lifetime views are never hidden (never NULL): latest and last_known agree
        {{ latest('views') }} as views_now,
        max(scraped_at) as scraped_now,
        coalesce({{ latest_before('views', 'scraped_at', '(select as_of from as_of) - interval 30 day') }},
                 argMin(views, scraped_at)) as views_then,
        if(countIf(scraped_at <= (select as_of from as_of) - interval 30 day) > 0,
           maxIf(scraped_at, scraped_at <= (select as_of from as_of) - interval 30 day),
           min(scraped_at)) as scraped_then
    from snapshots
    group by channel_id
),
observed as (
    select
        channel_id,
        dateDiff('second', scraped_then, scraped_now) / 86400 as window_days,
        if(window_days < 7, NULL, (toFloat64(views_now) - toFloat64(views_then)) / window_days * 30) as observed_monthly_views
    from windows
)
select
    c.channel_id as channel_id,
    c.profile_key as profile_key,
    c.title as title,
    c.category as category,
    c.country as country,
    c.subscribers as subscribers,
    c.total_views as total_views,
    v.source_category as vidooly_category,
    nullIf(vcat.category, '') as vidooly_stir_category,
    v.estimated_at as estimated_at,
    v.estimated_monthly_views as estimated_monthly_views,
    v.estimated_monthly_earnings_low as estimated_monthly_earnings_low,
    v.estimated_monthly_earnings_high as estimated_monthly_earnings_high,
    o.window_days as observed_window_days,
    o.observed_monthly_views as observed_monthly_views,
    toFloat64(v.estimated_monthly_views) - o.observed_monthly_views as views_error,
    {{ growth_pct('v.estimated_monthly_views', 'o.observed_monthly_views') }} as views_error_pct,
    {{ log_ratio('v.estimated_monthly_views', 'o.observed_monthly_views') }} as views_log_ratio,
    {{ abs_log_ratio('v.estimated_monthly_views', 'o.observed_monthly_views') }} as views_abs_log_error,
    dateDiff('day', v.estimated_at, (select as_of from as_of)) as estimate_age_days,
    (select as_of from as_of) as as_of
from {{ ref('int_youtube__channels') }} as c
inner join {{ ref('stg_vidooly__channel_estimates') }} as v on v.channel_id = c.channel_id
left join observed as o on o.channel_id = c.channel_id
left join {{ category_map('vidooly') }} as vcat on vcat.source_category = v.source_category
