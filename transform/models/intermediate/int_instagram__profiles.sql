{{ config(
    materialized='incremental',
    incremental_strategy='legacy',
    unique_key='profile_id',
    order_by='profile_id',
    on_schema_change='fail',
    tags=['core'],
    pre_hook="{{ reset_if_source_rewound(source('instagram', 'account_snapshots'), '_ingested_at', 'ingested_at') }}",
) }}
-- One row per Instagram profile: its latest state (macros latest and last_known), its followers 7
-- and 30 days before the data's as-of time (the latest snapshot at or before the cut-off), its
-- Stir category and whether it is deleted.
--
-- Incremental per profile (rows replaced by profile_id, macros/incremental_keys.sql): a run
-- recomputes, from all their snapshots, the profiles an increment touched: new snapshots (late
-- ones too: cut on ingestion time), new profile requests in Beat's log (is_deleted), a snapshot
-- that crossed the 7- or 30-day cut-off as as_of moved, a category the taxonomy drop now maps
-- differently. The other rows keep the as_of they were computed at. The watermarks are the newest
-- ingested_at (snapshots) and requests_ingested_at (Beat) the table holds.
{% set as_of_sql = as_of(source('instagram', 'account_snapshots')) %}
{% set requests = "source = 'instagram' and endpoint = 'profile'" %}
with
{% if is_incremental() %}
touched as (
    {{ keys_ingested_since(source('instagram', 'account_snapshots'), 'profile_id', 'ingested_at') }}
    union distinct
    {{ keys_ingested_since(source('beat', 'scrape_requests'), 'toUInt64(target_id) as profile_id', 'requests_ingested_at', where=requests) }}
    union distinct
    {{ keys_leaving_window(source('instagram', 'account_snapshots'), 'profile_id', 'scraped_at', 7, as_of_sql) }}
    union distinct
    {{ keys_leaving_window(source('instagram', 'account_snapshots'), 'profile_id', 'scraped_at', 30, as_of_sql) }}
    union distinct
    {{ keys_recategorized('instagram', 'profile_id') }}
),
{% endif %}
snapshots as (
    -- followers_v: the raw value, which the alias `followers` below would otherwise shadow
    select *, followers as followers_v from {{ ref('stg_instagram__account_snapshots') }}
    {% if is_incremental() %}where profile_id in (select profile_id from touched){% endif %}
),
as_of as (
    -- from the raw table: the newest scrape needs no dedupe, and the incremental run's
    -- snapshots are the touched profiles' only
    select {{ as_of_sql }} as as_of
),
latest as (
    select
        profile_id,
        {{ latest('username') }} as username,
        {{ latest('full_name') }} as full_name,
        -- last_known: the API leaves the category out of some responses, and country and
        -- language are Beat's inferences, which fail on some scrapes; a gap changes nothing
        {{ last_known('source_category') }} as source_category,
        {{ last_known('country') }} as country,
        {{ last_known('language') }} as language,
        {{ latest('followers') }} as followers,
        {{ latest('following') }} as following,
        {{ latest('posts_count') }} as posts_count,
        {{ latest('is_verified') }} as is_verified,
        {{ latest('is_private') }} as is_private,
        {{ latest('is_business') }} as is_business,
        {{ latest_before('followers_v', 'scraped_at', '(select as_of from as_of) - interval 7 day') }} as followers_7d_ago,
        {{ latest_before('followers_v', 'scraped_at', '(select as_of from as_of) - interval 30 day') }} as followers_30d_ago,
        min(scraped_at) as first_scraped_at,
        max(scraped_at) as last_scraped_at,
        toUInt64(count()) as snapshot_count,
        max(ingested_at) as ingested_at
    from snapshots
    group by profile_id
)
select
    latest.profile_id as profile_id,
    latest.username as username,
    latest.full_name as full_name,
    latest.source_category as source_category,
    latest.country as country,
    latest.language as language,
    latest.followers as followers,
    latest.following as following,
    latest.posts_count as posts_count,
    latest.is_verified as is_verified,
    latest.is_private as is_private,
    latest.is_business as is_business,
    latest.followers_7d_ago as followers_7d_ago,
    latest.followers_30d_ago as followers_30d_ago,
    latest.first_scraped_at as first_scraped_at,
    latest.last_scraped_at as last_scraped_at,
    latest.snapshot_count as snapshot_count,
    concat('instagram:', toString(latest.profile_id)) as profile_key,
    nullIf(cat.category, '') as category,
    nullIf(cat.category_group, '') as category_group,
    coalesce(st.is_deleted, false) as is_deleted,
    (select as_of from as_of) as as_of,
    latest.ingested_at as ingested_at,
    (select max(_ingested_at) from {{ source('beat', 'scrape_requests') }} where {{ requests }}) as requests_ingested_at
from latest
left join {{ category_map('instagram') }} as cat on cat.source_category = latest.source_category
left join (
    select profile_id, is_deleted from {{ ref('int_instagram__profile_status') }}
    {% if is_incremental() %}where profile_id in (select profile_id from touched){% endif %}
) as st on st.profile_id = latest.profile_id
