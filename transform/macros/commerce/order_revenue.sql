{#- The revenue aggregates every commerce mart reports for a group of attributed orders (rows of
    int_shopify__attributed_orders, already one row per order in the group): counted orders
    (not refunded or cancelled), refunded or cancelled ones, revenue in the shop's currency and in
    USD, average order value and distinct customers. `filter` narrows the orders (e.g. a
    campaign's window). -#}
{% macro order_revenue_aggregates(filter='1') -%}
    toInt64(countIf(is_counted and ({{ filter }}))) as orders,
    toInt64(countIf(not is_counted and ({{ filter }}))) as refunded_orders,
    toDecimal128(sumIf(total_price, is_counted and ({{ filter }})), 2) as revenue,
    toFloat64(coalesce(sumIf({{ to_usd('total_price', 'currency') }}, is_counted and ({{ filter }})), 0)) as revenue_usd,
    toNullable(toFloat64({{ safe_divide('sumIf(total_price, is_counted and (' ~ filter ~ '))', 'countIf(is_counted and (' ~ filter ~ '))') }})) as avg_order_value,
    toInt64(uniqExactIf(customer_id, is_counted and customer_id is not null and ({{ filter }}))) as customers
{%- endmacro %}
