{{ config(materialized='view') }}

select
    order_id,
    customer,
    status,
    toDecimal64(amount, 2) as amount,
    updated_at
from {{ source('raw', 'orders') }}
