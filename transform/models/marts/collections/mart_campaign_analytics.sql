{{ config(order_by='(brand_id, campaign_id)', tags=['collections']) }}
-- One row per campaign: its collection's members and reach, what members published during the
-- campaign window (starts_on to ends_on; open campaigns to as_of), the engagements and the
-- estimated media value those posts delivered, and the budget against the estimated cost of one
-- post per member. The campaign page of the app; campaign managers read it while it runs.
-- Revenue and ROI live in the commerce marts (mart_campaign_revenue).
with as_of as (
    select {{ as_of(ref('int_collections__member_content'), 'last_scraped_at') }} as as_of
),
campaigns as (
    select
        *,
        toDateTime64(starts_on, 3, 'UTC') as window_start,
        toDateTime64(coalesce(ends_on, toDate((select as_of from as_of))), 3, 'UTC') + interval 1 day as window_end
    from {{ ref('stg_coffee__campaigns') }}
),
members as (
    select * from {{ ref('int_collections__members') }} where not is_deleted
),
member_counts as (
    select collection_id, count() as live_members from members group by collection_id
),
delivered as (
    select
        k.campaign_id as campaign_id,
        count() as posts,
        countIf(p.is_paid_partnership) as paid_partnership_posts,
        uniqExact(m.profile_key) as members_posting,
        sum(p.engagements) as engagements,
        sum({{ estimated_media_value('m.audience', 'p.engagements', 'p.views') }}) as media_value
    from campaigns as k
    inner join members as m on m.collection_id = k.collection_id
    inner join {{ ref('int_collections__member_content') }} as p on p.profile_key = m.profile_key
    where p.posted_at >= k.window_start and p.posted_at < k.window_end
    group by k.campaign_id
)
select
    toInt64(k.campaign_id) as campaign_id,
    toInt64(k.brand_id) as brand_id,
    toNullable(toInt64(k.collection_id)) as collection_id,
    toString(k.campaign_name) as campaign_name,
    toLowCardinality(toString(k.status)) as status,
    k.starts_on as starts_on,
    k.ends_on as ends_on,
    toInt32(greatest(0, dateDiff('day', k.window_start, least(k.window_end, (select as_of from as_of) + interval 1 day)))) as days_run,
    toNullable(toFloat64({{ to_usd('k.budget', 'k.currency') }})) as budget_usd,
    toInt32(coalesce(mc.live_members, 0)) as live_members,
    toInt64(coalesce(r.total_reach, 0)) as total_reach,
    toInt64(coalesce(r.unique_reach, 0)) as unique_reach,
    toFloat64(coalesce(e.est_cost_per_round_usd, 0)) as est_cost_per_round_usd,
    toInt64(coalesce(d.posts, 0)) as posts_in_window,
    toInt64(coalesce(d.paid_partnership_posts, 0)) as paid_partnership_posts_in_window,
    toInt32(coalesce(d.members_posting, 0)) as members_posting_in_window,
    toNullable(toFloat64({{ safe_divide('d.members_posting', 'mc.live_members') }})) as member_activation_rate,
    toInt64(coalesce(d.engagements, 0)) as engagements_in_window,
    toFloat64(coalesce(d.media_value, 0)) as est_media_value_delivered_usd,
    toNullable(toFloat64({{ safe_divide('d.media_value', to_usd('k.budget', 'k.currency')) }})) as media_value_to_budget_ratio
from campaigns as k
left join {{ ref('mart_collection_reach') }} as r on r.collection_id = k.collection_id
left join {{ ref('mart_collection_cost_estimates') }} as e on e.collection_id = k.collection_id
left join member_counts as mc on mc.collection_id = k.collection_id
left join delivered as d on d.campaign_id = k.campaign_id
