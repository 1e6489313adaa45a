{{ config(
    materialized=('distributed_incremental' if target.get('cluster') else 'incremental'),
    incremental_strategy='append',
    engine='ReplacingMergeTree(ingested_at)',
    order_by='(profile_id, post_id)',
    partition_by='toYYYYMM(posted_at)',
    sharding_key='cityHash64(profile_id)',
    tags=['core'],
    pre_hook="{{ reset_if_source_rewound(source('instagram', 'post_snapshots'), '_ingested_at', 'ingested_at') }}",
) }}{#
    On a ClickHouse cluster (STIR_CLICKHOUSE_CLUSTER) this, the largest fact, is the one
    Distributed model: a ReplicatedReplacingMergeTree `int_instagram__post_metrics_local` on every
    shard under a Distributed table of this name, sharded by profile, so that every version of a
    post lands on one shard (FINAL per shard stays exact) and with it every post of its profile
    (the readers' per-profile LIMIT BY too). Its readers' JOINs and INs are GLOBAL (the profile's
    prefer_global_in_and_join): the tables they join were filled on one shard only. A Jinja
    comment, so that the SQL sent without a cluster stays what it was.
#}
-- One row per post with its latest likes, comments and views: the post fact the marts read.
--
-- Incremental and append-only, the ClickHouse way: each run picks the posts that received any
-- snapshot since the last run, cut on *ingestion* time (a late delivery of an old scrape has a
-- new ingested_at, so it is picked up), recomputes those posts from all their snapshots with
-- latest() on the scrape time (so a late, older observation never overwrites a newer one, and a
-- count hidden since, NULL in the newest scrape, is NULL here too), and appends the result. The table is a ReplacingMergeTree(ingested_at) on the post key: readers
-- take FINAL, and merges drop the superseded versions. The overlap guards against rows that
-- were being inserted while the previous run read. If the source's history was replaced (its
-- newest row is older than our watermark), the pre-hook empties the table and the run rebuilds.
-- `changed` reads the raw table itself: a set of keys needs no dedupe, and skipping FINAL
-- keeps this a scan of two key columns and _ingested_at instead of a merge of the whole table.
-- The recompute then reads only those posts; (profile_id, post_id) is the prefix of the raw
-- table's ORDER BY, so the filter uses its primary index, and only their metadata.
with changed as (
    select distinct profile_id, post_id
    from {{ source('instagram', 'post_snapshots') }}
    {% if is_incremental() %}
    where _ingested_at > {{ ingestion_watermark('ingested_at') }}
    {% endif %}
)
select
    s.profile_id as profile_id,
    s.post_id as post_id,
    any(p.posted_at) as posted_at,
    any(p.media_type) as media_type,
    any(p.is_video) as is_video,
    any(p.is_paid_partnership) as is_paid_partnership,
    toUInt64(length(any(p.hashtags))) as hashtag_count,
    {{ latest('s.likes', 's.scraped_at') }} as likes,
    {{ latest('s.comments', 's.scraped_at') }} as comments,
    {{ latest('s.views', 's.scraped_at') }} as views,
    toUInt64(count()) as snapshot_count,
    max(s.scraped_at) as last_scraped_at,
    max(s.ingested_at) as ingested_at
from {{ ref('stg_instagram__post_snapshots') }} as s
-- an incremental run aggregates the changed posts' metadata only, not every post's (the filter
-- is on the view's GROUP BY key, so it runs below the aggregation)
inner join (
    select * from {{ ref('stg_instagram__posts') }}
    {% if is_incremental() %}where post_id in (select post_id from changed){% endif %}
) as p on p.post_id = s.post_id
where (s.profile_id, s.post_id) in (select profile_id, post_id from changed)
group by s.profile_id, s.post_id
