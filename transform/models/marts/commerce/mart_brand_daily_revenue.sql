{{ config(order_by='(brand_id, order_date)', tags=['collections']) }}
-- One row per brand with a Shopify shop and day with orders (the 90 calendar days ending on
-- the day of as_of, the newest order): all counted orders and revenue of the shop beside those
-- carrying a collection member's code, and the creators' share. The revenue chart of the
-- brand's commerce page.
with orders as (
    select
        b.brand_id as brand_id,
        o.order_id as order_id,
        toDate(o.created_at) as order_date,
        {{ counted_order('o.cancelled_at', 'o.financial_status') }} as is_counted,
        o.total_price as total_price,
        o.currency as currency,
        o.customer_id as customer_id,
        o.order_id in (select order_id from {{ ref('int_shopify__attributed_orders') }}) as is_attributed
    from {{ ref('stg_shopify__orders') }} as o
    inner join {{ ref('stg_coffee__brands') }} as b on b.shopify_domain = o.shop_domain
    -- whole days: the 90 calendar days ending on the day of as_of
    where toDate(o.created_at) > toDate({{ as_of(ref('stg_shopify__orders'), 'created_at') }}) - 90
)
select
    toInt64(brand_id) as brand_id,
    order_date,
    {{ order_revenue_aggregates() }},
    toString(any(currency)) as shop_currency,
    toInt64(countIf(is_counted and is_attributed)) as attributed_orders,
    toDecimal128(sumIf(total_price, is_counted and is_attributed), 2) as attributed_revenue,
    toFloat64(coalesce(sumIf({{ to_usd('total_price', 'currency') }}, is_counted and is_attributed), 0)) as attributed_revenue_usd,
    toNullable(toFloat64({{ safe_divide('sumIf(total_price, is_counted and is_attributed)', 'sumIf(total_price, is_counted)') }})) as attributed_revenue_share
from orders
group by brand_id, order_date
