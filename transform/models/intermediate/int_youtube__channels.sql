{{ config(materialized='table', order_by='channel_id', tags=['core']) }}
-- One row per YouTube channel: its metadata, its latest statistics and those 7 and 30 days
-- before the as-of time, its Stir category and Vidooly's newest estimate.
with snapshots as (
    -- *_v: the raw values, which the aliases below would otherwise shadow
    select *, subscribers as subscribers_v, views as views_v from {{ ref('stg_youtube__channel_snapshots') }}
),
as_of as (
    select max(scraped_at) as as_of from snapshots
),
stats as (
    select
        channel_id,
        -- latest, not last_known: NULL is a hidden count, and a channel that hides it now must
        -- not keep showing its last visible one (stg_youtube__channels flags it hidden)
        {{ latest('subscribers') }} as subscribers,
        {{ latest('views') }} as total_views,
        {{ latest('video_count') }} as video_count,
        {{ latest_before('subscribers_v', 'scraped_at', '(select as_of from as_of) - interval 7 day') }} as subscribers_7d_ago,
        {{ latest_before('subscribers_v', 'scraped_at', '(select as_of from as_of) - interval 30 day') }} as subscribers_30d_ago,
        {{ latest_before('views_v', 'scraped_at', '(select as_of from as_of) - interval 30 day') }} as total_views_30d_ago,
        max(scraped_at) as last_scraped_at
    from snapshots
    group by channel_id
)
select
    c.channel_id as channel_id,
    concat('youtube:', c.channel_id) as profile_key,
    c.title as title,
    c.custom_url as custom_url,
    c.country as country,
    c.language as language,
    c.source_category as source_category,
    nullIf(cat.category, '') as category,
    nullIf(cat.category_group, '') as category_group,
    c.published_at as published_at,
    c.hidden_subscriber_count as hidden_subscriber_count,
    stats.subscribers as subscribers,
    stats.total_views as total_views,
    stats.video_count as video_count,
    stats.subscribers_7d_ago as subscribers_7d_ago,
    stats.subscribers_30d_ago as subscribers_30d_ago,
    stats.total_views_30d_ago as total_views_30d_ago,
    stats.last_scraped_at as last_scraped_at,
    vid.estimated_monthly_views as estimated_monthly_views,
    (select as_of from as_of) as as_of
from {{ ref('stg_youtube__channels') }} as c
inner join stats on stats.channel_id = c.channel_id
left join {{ category_map('youtube') }} as cat on cat.source_category = c.source_category
left join {{ ref('stg_vidooly__channel_estimates') }} as vid on vid.channel_id = c.channel_id
