{{ config(tags=['collections']) }}
-- The attributed orders of int_shopify__attributed_orders (one row per order and member whose
-- code it carries) with what the commerce marts add: the customer and the member's profile key.
select
    a.order_id as order_id,
    a.brand_id as brand_id,
    a.collection_id as collection_id,
    a.collection_member_id as collection_member_id,
    a.tracked_profile_id as tracked_profile_id,
    t.profile_key as profile_key,
    a.discount_code as discount_code,
    a.created_at as created_at,
    a.financial_status as financial_status,
    a.is_counted as is_counted,
    a.currency as currency,
    a.total_price as total_price,
    o.customer_id as customer_id
from {{ ref('int_shopify__attributed_orders') }} as a
inner join {{ ref('stg_shopify__orders') }} as o on o.order_id = a.order_id
inner join {{ ref('stg_coffee__tracked_profiles') }} as t on t.tracked_profile_id = a.tracked_profile_id
