{{ config(order_by='(collection_id, collection_member_id)', tags=['collections']) }}
-- One row per collection member with a discount code: how well the creator's audience converts
-- into orders — orders and USD revenue per 1,000 followers, and per 1,000 engagements its posts
-- earned since it joined the collection. Campaign managers compare creators by sales per
-- audience, not only by audience.
with members as (
    select * from {{ ref('int_collections__members') }} where discount_code is not null
),
orders as (
    select
        collection_member_id,
        {{ order_revenue_aggregates() }}
    from {{ ref('int_shopify__attributed_orders') }}
    group by collection_member_id
),
engagements as (
    select m.collection_member_id as collection_member_id, sum(p.engagements) as engagements, count() as posts
    from members as m
    inner join {{ ref('int_collections__member_content') }} as p on p.profile_key = m.profile_key
    where p.posted_at >= m.added_at
    group by m.collection_member_id
)
select
    toInt64(m.collection_member_id) as collection_member_id,
    toInt64(m.collection_id) as collection_id,
    toInt64(m.brand_id) as brand_id,
    toString(m.profile_key) as profile_key,
    toString(assumeNotNull(m.discount_code)) as discount_code,
    toNullable(toInt64(m.audience)) as audience,
    toInt64(coalesce(e.posts, 0)) as posts_since_added,
    toInt64(coalesce(e.engagements, 0)) as engagements_since_added,
    toInt64(coalesce(o.orders, 0)) as orders,
    toFloat64(coalesce(o.revenue_usd, 0)) as revenue_usd,
    toNullable(toFloat64({{ safe_divide('coalesce(o.orders, 0) * 1000', 'm.audience') }})) as orders_per_1k_audience,
    toNullable(toFloat64({{ safe_divide('coalesce(o.orders, 0) * 1000', 'e.engagements') }})) as orders_per_1k_engagements,
    toNullable(toFloat64({{ safe_divide('coalesce(o.revenue_usd, 0) * 1000', 'm.audience') }})) as revenue_usd_per_1k_audience
from members as m
left join orders as o on o.collection_member_id = m.collection_member_id
left join engagements as e on e.collection_member_id = m.collection_member_id
