{{ config(
    materialized='incremental',
    incremental_strategy='legacy',
    unique_key='channel_id',
    order_by='channel_id',
    on_schema_change='fail',
    tags=['core'],
    pre_hook="{{ reset_if_source_rewound(source('youtube', 'channel_snapshots'), '_ingested_at', 'ingested_at') }}",
) }}
-- One row per YouTube channel: its metadata, its latest statistics and those 7 and 30 days
-- before the as-of time, its Stir category and Vidooly's newest estimate.
--
-- Incremental per channel (rows replaced by channel_id, macros/incremental_keys.sql): a run
-- recomputes the channels an increment touched: new statistics snapshots, metadata or Vidooly
-- estimates (cut on ingestion time; an estimate only when newer than the channel's, as Vidooly
-- delivers in drops), a snapshot that crossed the 7- or 30-day cut-off as as_of
-- moved, a category the taxonomy drop now maps differently. The other rows keep the as_of they
-- were computed at. The watermarks are the newest ingested_at, channel_ingested_at and
-- estimate_ingested_at the table holds.
{% set as_of_sql = as_of(source('youtube', 'channel_snapshots')) %}
with
{% if is_incremental() %}
touched as (
    {{ keys_ingested_since(source('youtube', 'channel_snapshots'), 'channel_id', 'ingested_at') }}
    union distinct
    {{ keys_ingested_since(source('youtube', 'channels'), 'channel_id', 'channel_ingested_at') }}
    union distinct
    {{ keys_not_reflected(source('vidooly', 'channel_estimates'), 'channel_id', 'estimate_ingested_at', {'_ingested_at': 'estimate_ingested_at', 'estimated_at': 'estimated_at'}) }}
    union distinct
    {{ keys_leaving_window(source('youtube', 'channel_snapshots'), 'channel_id', 'scraped_at', 7, as_of_sql) }}
    union distinct
    {{ keys_leaving_window(source('youtube', 'channel_snapshots'), 'channel_id', 'scraped_at', 30, as_of_sql) }}
    union distinct
    {{ keys_recategorized('youtube', 'channel_id') }}
),
{% endif %}
snapshots as (
    -- *_v: the raw values, which the aliases below would otherwise shadow
    select *, subscribers as subscribers_v, views as views_v from {{ ref('stg_youtube__channel_snapshots') }}
    {% if is_incremental() %}where channel_id in (select channel_id from touched){% endif %}
),
as_of as (
    -- from the raw table: the newest scrape needs no dedupe, and the incremental run's
    -- snapshots are the touched channels' only
    select {{ as_of_sql }} as as_of
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
        max(scraped_at) as last_scraped_at,
        max(ingested_at) as ingested_at
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
    vid.estimated_at as estimated_at,
    (select as_of from as_of) as as_of,
    stats.ingested_at as ingested_at,
    c.ingested_at as channel_ingested_at,
    vid.ingested_at as estimate_ingested_at
from (
    select * from {{ ref('stg_youtube__channels') }}
    {% if is_incremental() %}where channel_id in (select channel_id from touched){% endif %}
) as c
inner join stats on stats.channel_id = c.channel_id
left join {{ category_map('youtube') }} as cat on cat.source_category = c.source_category
left join (
    select * from {{ ref('stg_vidooly__channel_estimates') }}
    {% if is_incremental() %}where channel_id in (select channel_id from touched){% endif %}
) as vid on vid.channel_id = c.channel_id
