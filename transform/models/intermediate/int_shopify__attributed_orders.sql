{{ config(materialized='table', order_by='(collection_id, order_id)', tags=['collections']) }}
-- Orders attributed to a collection member: an order of a brand's shop (shop domain -> brand)
-- carrying the discount code of one of that brand's collection members, with the order's
-- customer and the member's profile key. One row per (order, member); an order with two
-- members' codes counts for both. What every commerce mart and the collection analytics read.
select
    o.order_id as order_id,
    b.brand_id as brand_id,
    c.collection_id as collection_id,
    m.collection_member_id as collection_member_id,
    m.tracked_profile_id as tracked_profile_id,
    t.profile_key as profile_key,
    d.discount_code as discount_code,
    o.created_at as created_at,
    o.financial_status as financial_status,
    {{ counted_order('o.cancelled_at', 'o.financial_status') }} as is_counted,
    o.currency as currency,
    o.total_price as total_price,
    o.customer_id as customer_id
from {{ ref('stg_shopify__order_discount_codes') }} as d
inner join {{ ref('stg_shopify__orders') }} as o on o.order_id = d.order_id
inner join {{ ref('stg_coffee__brands') }} as b on b.shopify_domain = d.shop_domain
inner join {{ ref('stg_coffee__collections') }} as c on c.brand_id = b.brand_id
inner join {{ ref('stg_coffee__collection_members') }} as m
    on m.collection_id = c.collection_id and m.discount_code = d.discount_code
-- every member's profile is tracked (a relationships test of stg_coffee__collection_members)
inner join {{ ref('stg_coffee__tracked_profiles') }} as t on t.tracked_profile_id = m.tracked_profile_id
