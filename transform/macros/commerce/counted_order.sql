{#- An order that counts as revenue: not cancelled and not refunded (the rule of
    int_shopify__attributed_orders.is_counted, for orders read straight from staging). -#}
{% macro counted_order(cancelled_at='cancelled_at', financial_status='financial_status') -%}
    ({{ cancelled_at }} is null and {{ financial_status }} != 'refunded')
{%- endmacro %}
