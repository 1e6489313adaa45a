{{ config(order_by='(brand_id, discount_code, product_rank)', tags=['collections']) }}
-- The top var top_products_per_code (10) products of each creator discount code by revenue of
-- the counted orders carrying it (line price x quantity − line discount): what each creator's
-- audience buys, for brand managers planning the next brief or bundle.
with orders as (
    select distinct brand_id, discount_code, order_id, currency
    from {{ ref('int_shopify__attributed_orders') }}
    where is_counted
),
products as (
    select
        o.brand_id as brand_id,
        o.discount_code as discount_code,
        li.product_id as product_id,
        any(li.title) as title,
        any(li.sku) as sku,
        count() as line_items,
        uniqExact(o.order_id) as orders,
        sum(li.quantity) as units,
        sum(li.price * li.quantity - li.total_discount) as revenue,
        any(o.currency) as currency
    from orders as o
    inner join {{ ref('stg_shopify__order_line_items') }} as li on li.order_id = o.order_id
    group by o.brand_id, o.discount_code, li.product_id
)
select
    toInt64(brand_id) as brand_id,
    toString(discount_code) as discount_code,
    toInt64(product_id) as product_id,
    toString(title) as title,
    toString(sku) as sku,
    toInt64(orders) as orders,
    toInt64(units) as units,
    toDecimal128(revenue, 2) as revenue,
    toString(currency) as currency,
    toNullable(toFloat64({{ to_usd('revenue', 'currency') }})) as revenue_usd,
    toInt32(row_number() over (partition by brand_id, discount_code order by revenue desc, product_id)) as product_rank
from products
order by brand_id, discount_code, revenue desc, product_id
limit {{ var('top_products_per_code') }} by brand_id, discount_code
