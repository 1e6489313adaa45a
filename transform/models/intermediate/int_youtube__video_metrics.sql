{{ config(
    materialized='incremental',
    incremental_strategy='legacy',
    unique_key='video_id',
    order_by='(channel_id, video_id)',
    on_schema_change='fail',
    tags=['core'],
    pre_hook="{{ reset_if_source_rewound(source('youtube', 'video_snapshots'), '_ingested_at', 'ingested_at') }}",
) }}
-- One row per video with its latest views, likes and comments (latest() on the scrape time:
-- likes hidden or comments disabled since are NULL, not their last visible count).
--
-- Incremental per video (rows replaced by video_id, macros/incremental_keys.sql): a run
-- recomputes, from all their snapshots, the videos with new snapshots or metadata (cut on
-- ingestion time, so late deliveries count). Nothing here depends on as_of. The watermarks are
-- the newest ingested_at (snapshots) and video_ingested_at (metadata) the table holds. Unlike the
-- post facts (append into a ReplacingMergeTree, read with FINAL), the table holds one row per
-- video, so its readers in every tier stay plain reads.
{% if is_incremental() %}
with touched as (
    {{ keys_ingested_since(source('youtube', 'video_snapshots'), 'video_id', 'ingested_at') }}
    union distinct
    {{ keys_ingested_since(source('youtube', 'videos'), 'video_id', 'video_ingested_at') }}
)
{% endif %}
select
    s.channel_id as channel_id,
    s.video_id as video_id,
    any(v.published_at) as published_at,
    any(v.is_short) as is_short,
    any(v.duration_seconds) as duration_seconds,
    {{ latest('s.views', 's.scraped_at') }} as views,
    {{ latest('s.likes', 's.scraped_at') }} as likes,
    {{ latest('s.comments', 's.scraped_at') }} as comments,
    max(s.scraped_at) as last_scraped_at,
    max(s.ingested_at) as ingested_at,
    any(v.ingested_at) as video_ingested_at
from {{ ref('stg_youtube__video_snapshots') }} as s
inner join (
    select * from {{ ref('stg_youtube__videos') }}
    {% if is_incremental() %}where video_id in (select video_id from touched){% endif %}
) as v on v.video_id = s.video_id
{% if is_incremental() %}where s.video_id in (select video_id from touched){% endif %}
group by s.channel_id, s.video_id
