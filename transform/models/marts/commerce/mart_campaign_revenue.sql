{{ config(order_by='(brand_id, campaign_id)', tags=['collections']) }}
-- One row per campaign with a collection: the orders and revenue its members' codes brought
-- inside the campaign window (starts_on to ends_on; open campaigns to as_of) and after it, the
-- best-selling code, and ROI in USD on the budget and on the estimated cost of one sponsored
-- post per member. The revenue panel of the campaign page, for campaign managers.
with campaigns as (
    select
        campaign_id, brand_id, collection_id, status, starts_on, ends_on, budget, currency as budget_currency,
        toDateTime64(starts_on, 3, 'UTC') as window_start,
        if(ends_on is null, toDateTime64('2100-01-01', 3, 'UTC'), toDateTime64(ends_on, 3, 'UTC') + interval 1 day) as window_end
    from {{ ref('stg_coffee__campaigns') }}
    where collection_id is not null
),
orders as (
    select * from {{ ref('int_shopify__attributed_orders') }}
    order by order_id, collection_member_id
    limit 1 by collection_id, order_id
),
windowed as (
    select
        k.campaign_id as campaign_id,
        o.order_id as order_id,
        o.discount_code as discount_code,
        o.is_counted as is_counted,
        o.total_price as total_price,
        o.currency as currency,
        o.customer_id as customer_id,
        o.created_at >= k.window_start and o.created_at < k.window_end as in_window,
        o.created_at >= k.window_end as after_window
    from campaigns as k
    inner join orders as o on o.collection_id = k.collection_id
),
revenue as (
    select
        campaign_id,
        {{ order_revenue_aggregates('in_window') }},
        toInt64(countIf(is_counted and after_window)) as orders_after,
        toFloat64(coalesce(sumIf({{ to_usd('total_price', 'currency') }}, is_counted and after_window), 0)) as revenue_usd_after,
        toString(any(currency)) as shop_currency,
        nullIf(topKWeightedIf(1)(discount_code, toUInt64(total_price * 100), is_counted and in_window)[1], '') as top_discount_code
    from windowed
    group by campaign_id
)
select
    toInt64(k.campaign_id) as campaign_id,
    toInt64(k.brand_id) as brand_id,
    toInt64(assumeNotNull(k.collection_id)) as collection_id,
    toLowCardinality(toString(k.status)) as status,
    k.starts_on as starts_on,
    k.ends_on as ends_on,
    toInt64(coalesce(r.orders, 0)) as orders_in_window,
    toInt64(coalesce(r.refunded_orders, 0)) as refunded_orders_in_window,
    toDecimal128(coalesce(r.revenue, 0), 2) as revenue_in_window,
    toNullable(toString(r.shop_currency)) as currency,
    toFloat64(coalesce(r.revenue_usd, 0)) as revenue_usd_in_window,
    toNullable(toFloat64(r.avg_order_value)) as avg_order_value,
    toInt64(coalesce(r.customers, 0)) as customers_in_window,
    toInt64(coalesce(r.orders_after, 0)) as orders_after_window,
    toFloat64(coalesce(r.revenue_usd_after, 0)) as revenue_usd_after_window,
    toNullable(toString(r.top_discount_code)) as top_discount_code,
    toNullable(toFloat64({{ to_usd('k.budget', 'k.budget_currency') }})) as budget_usd,
    toFloat64(coalesce(e.est_cost_per_round_usd, 0)) as est_cost_usd,
    toNullable(toFloat64({{ safe_divide('coalesce(r.revenue_usd, 0) - ' ~ to_usd('k.budget', 'k.budget_currency'), to_usd('k.budget', 'k.budget_currency')) }})) as roi_on_budget,
    toNullable(toFloat64({{ safe_divide('coalesce(r.revenue_usd, 0) - e.est_cost_per_round_usd', 'e.est_cost_per_round_usd') }})) as roi_on_estimated_cost
from campaigns as k
left join revenue as r on r.campaign_id = k.campaign_id
left join {{ ref('mart_collection_cost_estimates') }} as e on e.collection_id = k.collection_id
