{{ config(order_by='(brand_id, collection_id)', tags=['collections']) }}
-- One row per collection: the orders and revenue its members' codes brought (each order once
-- per collection), customers, members selling, and the return on the estimated cost of one
-- sponsored post per member (mart_collection_cost_estimates): ROI = (revenue − cost) / cost in
-- USD. For brand managers deciding which lists to fund again.
with orders as (
    select
        collection_id,
        {{ order_revenue_aggregates() }},
        uniqExactIf(collection_member_id, is_counted) as members_selling,
        toString(any(currency)) as shop_currency
    from (
        select * from {{ ref('int_shopify__attributed_orders') }}
        order by order_id, collection_member_id
        limit 1 by collection_id, order_id
    )
    group by collection_id
),
members as (
    select collection_id, countIf(discount_code is not null) as members_with_code
    from {{ ref('int_collections__members') }}
    group by collection_id
)
select
    toInt64(c.collection_id) as collection_id,
    toInt64(c.brand_id) as brand_id,
    toInt32(coalesce(m.members_with_code, 0)) as members_with_code,
    toInt32(coalesce(o.members_selling, 0)) as members_selling,
    toInt64(coalesce(o.orders, 0)) as orders,
    toInt64(coalesce(o.refunded_orders, 0)) as refunded_orders,
    toDecimal128(coalesce(o.revenue, 0), 2) as revenue,
    toNullable(toString(o.shop_currency)) as currency,
    toFloat64(coalesce(o.revenue_usd, 0)) as revenue_usd,
    toNullable(toFloat64(o.avg_order_value)) as avg_order_value,
    toInt64(coalesce(o.customers, 0)) as customers,
    toFloat64(coalesce(e.est_cost_per_round_usd, 0)) as est_cost_usd,
    toNullable(toFloat64({{ safe_divide('coalesce(o.revenue_usd, 0) - e.est_cost_per_round_usd', 'e.est_cost_per_round_usd') }})) as roi
from {{ ref('stg_coffee__collections') }} as c
left join orders as o on o.collection_id = c.collection_id
left join members as m on m.collection_id = c.collection_id
left join {{ ref('mart_collection_cost_estimates') }} as e on e.collection_id = c.collection_id
