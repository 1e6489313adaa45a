{{ config(
    materialized='incremental',
    incremental_strategy='append',
    engine='AggregatingMergeTree',
    order_by='(source, endpoint, hour_start)',
    on_schema_change='fail',
    tags=['monitoring'],
    pre_hook="{{ reset_if_source_rewound(source('beat', 'scrape_requests'), '_ingested_at', 'newest_ingested_at') }}",
) }}
-- Beat's whole log rolled up per source, endpoint and clock hour: the newest request and the
-- newest success of the hour (epoch when none), so that "when did this endpoint last succeed"
-- needs no scan of the log's history (mart_scrape_health reads its last 24 hours only).
--
-- Incremental and append-only into an AggregatingMergeTree: each run appends the hours of the
-- rows ingested since the last run (cut on ingestion time, with var incremental_overlap_minutes
-- of overlap for rows being inserted while it read; read on the log's order key from a day
-- before its newest request), and merges keep the max of each column.
-- It holds maxima only because a maximum is the same however often a row is read: the overlap
-- cannot double-count. Readers take max() per key (no FINAL needed). If the log's history was
-- replaced, the pre-hook empties the table and the run rebuilds it from the whole log.
select
    source,
    endpoint,
    toStartOfHour(started_at) as hour_start,
    cast(max(started_at), 'SimpleAggregateFunction(max, DateTime64(3, \'UTC\'))') as last_request_at,
    cast(maxIf(started_at, is_success), 'SimpleAggregateFunction(max, DateTime64(3, \'UTC\'))') as last_success_at,
    -- (named apart from the log's column: ClickHouse's WHERE would see this alias)
    cast(max(ingested_at), 'SimpleAggregateFunction(max, DateTime64(3, \'UTC\'))') as newest_ingested_at
from {{ ref('stg_beat__scrape_requests') }}
{% if is_incremental() %}
where ingested_at > {{ ingestion_watermark('newest_ingested_at') }}
  -- Beat ships its lines within seconds: a line arriving now started within the last day. The
  -- bound on the log's order key keeps each run's read to the last day, however long the log.
  and started_at > (select max(last_request_at) - interval 1 day from {{ this }})
{% endif %}
group by source, endpoint, hour_start
