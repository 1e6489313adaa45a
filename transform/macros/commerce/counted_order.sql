{#- An order that counts as revenue: not cancelled and not refunded. The one statement of the
    rule: int_shopify__attributed_orders.is_counted and every mart reading orders straight from
    staging use it. -#}
{% macro counted_order(cancelled_at='cancelled_at', financial_status='financial_status') -%}
    ({{ cancelled_at }} is null and {{ financial_status }} != 'refunded')
{%- endmacro %}
