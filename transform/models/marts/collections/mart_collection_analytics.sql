{{ config(order_by='(brand_id, collection_id)', tags=['collections']) }}
-- One row per collection: its members by platform, their combined audience and engagement
-- (from the unified profile metrics), its campaigns, and the orders and revenue attributed to
-- its members' discount codes (refunded and cancelled orders excluded).
with members as (
    select
        m.collection_id as collection_id,
        count() as members,
        countIf(t.platform = 'instagram') as instagram_members,
        countIf(t.platform = 'youtube') as youtube_members,
        countIf(m.discount_code is not null) as members_with_code,
        sum(p.audience) as total_audience,
        avg(p.engagement_rate) as avg_engagement_rate
    from {{ ref('stg_coffee__collection_members') }} as m
    inner join {{ ref('stg_coffee__tracked_profiles') }} as t on t.tracked_profile_id = m.tracked_profile_id
    left join {{ ref('mart_profile_metrics') }} as p on p.profile_key = t.profile_key
    group by m.collection_id
),
campaigns as (
    select
        collection_id,
        count() as campaigns,
        countIf(status = 'active') as active_campaigns
    from {{ ref('stg_coffee__campaigns') }}
    where collection_id is not null
    group by collection_id
),
orders as (
    select
        collection_id,
        uniqExactIf(order_id, is_counted) as attributed_orders,
        sumIf(total_price, is_counted) as attributed_revenue,
        any(currency) as currency,
        max(created_at) as last_order_at
    from (
        select * from {{ ref('int_shopify__attributed_orders') }}
        limit 1 by collection_id, order_id
    )
    group by collection_id
)
select
    toInt64(c.collection_id) as collection_id,
    toInt64(c.brand_id) as brand_id,
    toString(c.collection_name) as collection_name,
    toBool(c.is_archived) as is_archived,
    toInt32(coalesce(m.members, 0)) as members,
    toInt32(coalesce(m.instagram_members, 0)) as instagram_members,
    toInt32(coalesce(m.youtube_members, 0)) as youtube_members,
    toInt32(coalesce(m.members_with_code, 0)) as members_with_code,
    toInt64(coalesce(m.total_audience, 0)) as total_audience,
    toNullable(toFloat64(m.avg_engagement_rate)) as avg_engagement_rate,
    toInt32(coalesce(k.campaigns, 0)) as campaigns,
    toInt32(coalesce(k.active_campaigns, 0)) as active_campaigns,
    toInt64(coalesce(o.attributed_orders, 0)) as attributed_orders,
    toDecimal128(coalesce(o.attributed_revenue, 0), 2) as attributed_revenue,
    toNullable(toString(o.currency)) as currency,
    o.last_order_at as last_order_at
from {{ ref('stg_coffee__collections') }} as c
left join members as m on m.collection_id = c.collection_id
left join campaigns as k on k.collection_id = c.collection_id
left join orders as o on o.collection_id = c.collection_id
