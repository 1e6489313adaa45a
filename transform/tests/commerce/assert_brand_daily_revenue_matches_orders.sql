-- Each brand's daily revenue equals its shop's raw counted orders of that day (latest version per
-- order by updated_at; its cancelled_at through a one-element tuple, so a NULL at the newest
-- version, an order no longer cancelled, wins as argMax alone would not let it), over the days
-- the mart covers. Returns the (brand, day)s that differ.
with orders as (
    select
        order_id,
        argMax(shop_domain, updated_at) as shop_domain,
        min(created_at) as created_at,
        argMax(total_price, updated_at) as total_price,
        argMax(financial_status, updated_at) as financial_status,
        argMax(tuple(cancelled_at), updated_at).1 as cancelled_at
    from {{ source('shopify', 'orders') }}
    group by order_id
),
expected as (
    select b.id as brand_id, toDate(o.created_at) as order_date, count() as orders, sum(o.total_price) as revenue
    from orders as o
    inner join {{ source('coffee', 'brands') }} as b final on lower(b.shopify_domain) = o.shop_domain
    where o.cancelled_at is null and o.financial_status != 'refunded'
    group by brand_id, order_date
)
select m.brand_id, m.order_date, m.orders, e.orders as expected_orders, m.revenue, e.revenue as expected_revenue
from {{ ref('mart_brand_daily_revenue') }} as m
left join expected as e on e.brand_id = m.brand_id and e.order_date = m.order_date
where m.orders != coalesce(e.orders, 0) or m.revenue != coalesce(e.revenue, 0)
