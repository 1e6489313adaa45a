{{ config(order_by='(brand_id, collection_id)', tags=['collections']) }}
-- One row per collection: what one sponsored post from every live member would cost
-- (CPM/CPE rate card, macro estimated_post_cost, USD) against the media value it would earn
-- (macro estimated_media_value), per 1,000 unique people reached, and how many such rounds the
-- collection's campaign budget buys. For campaign managers sizing a budget; the constants are
-- dbt vars documented in macros/collections/creator_pricing.sql.
with members as (
    select
        collection_id,
        any(brand_id) as brand_id,
        countIf(est_cost_per_post_usd is not null) as members_priced,
        sum(est_cost_per_post_usd) as cost_per_round,
        sum(est_media_value_per_post_usd) as media_value_per_round,
        max(est_cost_per_post_usd) as most_expensive_member_cost
    from {{ ref('int_collections__members') }}
    where not is_deleted
    group by collection_id
),
budgets as (
    -- the newest campaign's budget, NULL when it has none (not an older campaign's budget)
    select collection_id, {{ latest(to_usd('budget', 'currency'), 'starts_on') }} as budget_usd
    from {{ ref('stg_coffee__campaigns') }}
    where collection_id is not null and status != 'draft'
    group by collection_id
)
select
    toInt64(c.collection_id) as collection_id,
    toInt64(c.brand_id) as brand_id,
    toInt32(coalesce(m.members_priced, 0)) as members_priced,
    toFloat64(coalesce(m.cost_per_round, 0)) as est_cost_per_round_usd,
    toFloat64(coalesce(m.media_value_per_round, 0)) as est_media_value_per_round_usd,
    toNullable(toFloat64({{ safe_divide('m.media_value_per_round', 'm.cost_per_round') }})) as media_value_to_cost_ratio,
    toNullable(toFloat64(m.most_expensive_member_cost)) as most_expensive_member_cost_usd,
    toNullable(toFloat64({{ safe_divide('m.cost_per_round * 1000', 'r.unique_reach') }})) as est_cost_per_1k_unique_reach_usd,
    toNullable(toFloat64(b.budget_usd)) as campaign_budget_usd,
    toNullable(toFloat64({{ safe_divide('b.budget_usd', 'm.cost_per_round') }})) as rounds_within_budget
from {{ ref('stg_coffee__collections') }} as c
left join members as m on m.collection_id = c.collection_id
left join {{ ref('mart_collection_reach') }} as r on r.collection_id = c.collection_id
left join budgets as b on b.collection_id = c.collection_id
