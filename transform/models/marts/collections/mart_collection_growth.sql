{{ config(order_by='(brand_id, collection_id)', tags=['collections']) }}
-- One row per collection: how its members' combined audience moved over the 7 and 30 days
-- before as_of (summed over the members with a value then), how many members grow or decline
-- (more than ±1% in 30 days) and who grows fastest. Brand managers use it to spot lists whose
-- reach is shrinking.
with members as (
    select
        collection_id,
        any(brand_id) as brand_id,
        sum(audience) as audience_sum,
        sumIf(audience, audience_7d_ago is not null) as audience_now_7d_base,
        sum(audience_7d_ago) as audience_7d_ago_sum,
        sumIf(audience, audience_30d_ago is not null) as audience_now_30d_base,
        sum(audience_30d_ago) as audience_30d_ago_sum,
        countIf(audience_growth_30d_pct > 0.01) as members_growing,
        countIf(audience_growth_30d_pct < -0.01) as members_declining,
        countIf(audience_growth_30d_pct is not null) as members_measured,
        argMax(profile_key, coalesce(audience_growth_30d_pct, -1e9)) as fastest_growing_profile_key,
        max(audience_growth_30d_pct) as fastest_growth_pct
    from {{ ref('int_collections__members') }}
    where not is_deleted
    group by collection_id
)
select
    toInt64(c.collection_id) as collection_id,
    toInt64(c.brand_id) as brand_id,
    toInt64(coalesce(m.audience_sum, 0)) as audience,
    toNullable(toInt64(if(m.audience_7d_ago_sum is null, NULL, toInt64(m.audience_now_7d_base) - toInt64(m.audience_7d_ago_sum)))) as audience_growth_7d,
    toNullable(toFloat64({{ growth_pct('m.audience_now_7d_base', 'm.audience_7d_ago_sum') }})) as audience_growth_7d_pct,
    toNullable(toInt64(if(m.audience_30d_ago_sum is null, NULL, toInt64(m.audience_now_30d_base) - toInt64(m.audience_30d_ago_sum)))) as audience_growth_30d,
    toNullable(toFloat64({{ growth_pct('m.audience_now_30d_base', 'm.audience_30d_ago_sum') }})) as audience_growth_30d_pct,
    toInt32(coalesce(m.members_measured, 0)) as members_measured,
    toInt32(coalesce(m.members_growing, 0)) as members_growing,
    toInt32(coalesce(m.members_declining, 0)) as members_declining,
    toNullable(toString(if(m.members_measured > 0, m.fastest_growing_profile_key, NULL))) as fastest_growing_profile_key,
    toNullable(toFloat64(m.fastest_growth_pct)) as fastest_growth_30d_pct
from {{ ref('stg_coffee__collections') }} as c
left join members as m on m.collection_id = c.collection_id
