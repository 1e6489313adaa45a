{{ config(order_by='brand_id', tags=['collections']) }}
-- One row per brand: its collections and campaigns rolled up, with members counted once across
-- collections (a profile in three of the brand's lists reaches its audience once): distinct
-- profiles and creators, their deduplicated reach, mean engagement, and the estimated cost and
-- media value of one post from each. The brand overview of the app, for brand managers.
with memberships as (
    select brand_id, count() as memberships
    from {{ ref('int_collections__members') }}
    group by brand_id
),
profiles as (
    -- one row per (brand, live profile): the same profile in several collections counts once
    select
        brand_id,
        profile_key,
        any(creator_key) as creator_key,
        any(audience) as audience,
        any(engagement_rate) as engagement_rate,
        any(est_cost_per_post_usd) as cost,
        any(est_media_value_per_post_usd) as media_value
    from {{ ref('int_collections__members') }}
    where not is_deleted
    group by brand_id, profile_key
),
brand_profiles as (
    select
        brand_id,
        count() as distinct_profiles,
        uniqExact(creator_key) as distinct_creators,
        sum(audience) as deduplicated_reach,
        avg(engagement_rate) as avg_engagement_rate,
        sum(cost) as cost_per_round,
        sum(media_value) as media_value_per_round
    from profiles
    group by brand_id
),
collections as (
    select brand_id, count() as collections, countIf(not is_archived) as active_collections
    from {{ ref('stg_coffee__collections') }}
    group by brand_id
),
campaigns as (
    select brand_id, count() as campaigns, countIf(status = 'active') as active_campaigns
    from {{ ref('stg_coffee__campaigns') }}
    group by brand_id
),
reach as (
    select brand_id, sum(total_reach) as summed_collection_reach
    from {{ ref('mart_collection_reach') }}
    group by brand_id
)
select
    toInt64(b.brand_id) as brand_id,
    toString(b.brand_name) as brand_name,
    toInt32(coalesce(c.collections, 0)) as collections,
    toInt32(coalesce(c.active_collections, 0)) as active_collections,
    toInt32(coalesce(k.campaigns, 0)) as campaigns,
    toInt32(coalesce(k.active_campaigns, 0)) as active_campaigns,
    toInt32(coalesce(ms.memberships, 0)) as memberships,
    toInt32(coalesce(p.distinct_profiles, 0)) as distinct_profiles,
    toInt32(coalesce(p.distinct_creators, 0)) as distinct_creators,
    toInt64(coalesce(r.summed_collection_reach, 0)) as summed_collection_reach,
    toInt64(coalesce(p.deduplicated_reach, 0)) as deduplicated_reach,
    toNullable(toFloat64(p.avg_engagement_rate)) as avg_engagement_rate,
    toFloat64(coalesce(p.cost_per_round, 0)) as est_cost_per_round_usd,
    toFloat64(coalesce(p.media_value_per_round, 0)) as est_media_value_per_round_usd
from {{ ref('stg_coffee__brands') }} as b
left join collections as c on c.brand_id = b.brand_id
left join campaigns as k on k.brand_id = b.brand_id
left join memberships as ms on ms.brand_id = b.brand_id
left join brand_profiles as p on p.brand_id = b.brand_id
left join reach as r on r.brand_id = b.brand_id
