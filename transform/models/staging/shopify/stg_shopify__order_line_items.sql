-- One line item of an order (from orders/create); repeated deliveries collapse with FINAL.
select
    line_item_id,
    order_id,
    shop_domain,
    created_at,
    product_id,
    variant_id,
    sku,
    title,
    toUInt64(quantity) as quantity,
    price,
    total_discount,
    _ingested_at as ingested_at
from {{ source('shopify', 'order_line_items') }} final
