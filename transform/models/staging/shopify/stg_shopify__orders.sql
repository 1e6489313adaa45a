-- One order, its latest version: latest() on Shopify's updated_at, so a late webhook of an older
-- version never overwrites a newer one. A webhook carries the whole order, so its NULLs are
-- the order's state (no cancellation, a guest checkout), never an omission.
select
    order_id,
    any(shop_domain) as shop_domain,
    {{ latest('order_number', 'version') }} as order_number,
    min(created_at) as created_at,
    max(version) as updated_at,
    {{ latest('cancelled_at', 'version') }} as cancelled_at,
    {{ latest('financial_status', 'version') }} as financial_status,
    {{ latest('fulfillment_status', 'version') }} as fulfillment_status,
    {{ latest('currency', 'version') }} as currency,
    {{ latest('subtotal_price', 'version') }} as subtotal_price,
    {{ latest('total_discounts', 'version') }} as total_discounts,
    {{ latest('total_price', 'version') }} as total_price,
    arrayMap(c -> upper(c), {{ latest('discount_codes', 'version') }}) as discount_codes,
    {{ latest('customer_id', 'version') }} as customer_id,
    {{ latest('shipping_country', 'version') }} as shipping_country,
    {{ latest('source_name', 'version') }} as source_name,
    max(_ingested_at) as ingested_at
from (select *, updated_at as version from {{ source('shopify', 'orders') }})
group by order_id
