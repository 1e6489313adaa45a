-- The counted revenue of each creator code equals a recomputation from the raw Shopify orders
-- (latest version per order by updated_at, not cancelled or refunded; cancelled_at through a
-- one-element tuple, so a NULL at the newest version wins as argMax alone would not let it) of
-- the brand's shop that carry one of the brand's members' codes. Returns the codes whose
-- revenue or orders differ.
with orders as (
    select
        order_id,
        argMax(shop_domain, updated_at) as shop_domain,
        argMax(total_price, updated_at) as total_price,
        argMax(financial_status, updated_at) as financial_status,
        argMax(tuple(cancelled_at), updated_at).1 as cancelled_at,
        argMax(discount_codes, updated_at) as discount_codes
    from {{ source('shopify', 'orders') }}
    group by order_id
),
codes as (
    select distinct c.brand_id as brand_id, upper(m.discount_code) as discount_code
    from {{ source('coffee', 'collection_members') }} as m final
    inner join {{ source('coffee', 'collections') }} as c final on c.id = m.collection_id
    where m.discount_code is not null
),
expected as (
    select toInt64(b.id) as brand_id, upper(code) as discount_code, count() as orders, sum(o.total_price) as revenue
    from orders as o
    array join o.discount_codes as code
    inner join {{ source('coffee', 'brands') }} as b final on lower(b.shopify_domain) = o.shop_domain
    where o.cancelled_at is null and o.financial_status != 'refunded'
      and (b.id, upper(code)) in (select brand_id, discount_code from codes)
    group by brand_id, discount_code
)
select coalesce(m.brand_id, e.brand_id) as brand_id, coalesce(m.discount_code, e.discount_code) as discount_code,
       m.orders, e.orders as expected_orders, m.revenue, e.revenue as expected_revenue
from {{ ref('mart_creator_code_orders') }} as m
full outer join expected as e on e.brand_id = m.brand_id and e.discount_code = m.discount_code
where coalesce(m.orders, 0) != coalesce(e.orders, 0)
   or coalesce(m.revenue, 0) != coalesce(e.revenue, 0)
