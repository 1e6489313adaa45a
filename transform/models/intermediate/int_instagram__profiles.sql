{{ config(materialized='table', order_by='profile_id', tags=['core']) }}
-- One row per Instagram profile: its latest state (macros latest and last_known), its followers 7
-- and 30 days before the data's as-of time (the latest snapshot at or before the cut-off), its
-- Stir category and whether it is deleted.
with snapshots as (
    -- followers_v: the raw value, which the alias `followers` below would otherwise shadow
    select *, followers as followers_v from {{ ref('stg_instagram__account_snapshots') }}
),
as_of as (
    select max(scraped_at) as as_of from snapshots
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
        toUInt64(count()) as snapshot_count
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
    (select as_of from as_of) as as_of
from latest
left join {{ category_map('instagram') }} as cat on cat.source_category = latest.source_category
left join {{ ref('int_instagram__profile_status') }} as st on st.profile_id = latest.profile_id
