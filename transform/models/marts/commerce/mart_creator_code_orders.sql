{{ config(order_by='(brand_id, discount_code)', tags=['collections']) }}
-- One row per creator discount code of a brand that appears on orders: the orders and revenue
-- it brought (all time and in the 30 days before as_of, the newest order), average order
-- value, customers, and its first and last order. The "codes" table of the brand's commerce
-- page: which creators sell. An order counted in two of the brand's collections counts once.
with code_orders as (
    select * from {{ ref('int_shopify__attributed_orders') }}
    order by order_id, collection_member_id
    limit 1 by brand_id, discount_code, order_id
),
as_of as (
    select {{ as_of(ref('stg_shopify__orders'), 'created_at') }} as as_of
)
select
    toInt64(brand_id) as brand_id,
    toString(discount_code) as discount_code,
    toString(min(code_orders.profile_key)) as profile_key,
    toInt32(uniqExact(code_orders.profile_key)) as creator_profiles,
    toInt32(uniqExact(collection_id)) as collections,
    {{ order_revenue_aggregates() }},
    toInt64(countIf(is_counted and created_at > (select as_of from as_of) - interval 30 day)) as orders_30d,
    toFloat64(coalesce(sumIf({{ to_usd('total_price', 'currency') }}, is_counted and created_at > (select as_of from as_of) - interval 30 day), 0)) as revenue_usd_30d,
    toString(any(currency)) as shop_currency,
    min(created_at) as first_order_at,
    max(created_at) as last_order_at,
    (select as_of from as_of) as as_of
from code_orders
group by brand_id, discount_code
