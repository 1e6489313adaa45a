{{ config(materialized='table', order_by='customer', engine='MergeTree()') }}

select
    o.customer as customer,
    count() as orders,
    sum(o.amount) as total_amount,
    countIf(s.is_final = 1) as final_orders
from {{ ref('orders_current') }} as o
left join {{ ref('order_statuses') }} as s on o.status = s.status
group by o.customer
