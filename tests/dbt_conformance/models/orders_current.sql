{{
    config(
        materialized='incremental',
        unique_key='order_id',
        order_by='order_id',
        engine='MergeTree()'
    )
}}

-- One row per order, its latest state; a run only reads what changed since the last one.
select order_id, customer, status, amount, updated_at
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
