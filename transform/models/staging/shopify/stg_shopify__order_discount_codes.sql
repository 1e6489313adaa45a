-- One row per (order, discount code) of the latest version of each order.
select
    order_id,
    shop_domain,
    created_at,
    discount_code
from {{ ref('stg_shopify__orders') }}
array join discount_codes as discount_code
