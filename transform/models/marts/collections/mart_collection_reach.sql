{{ config(order_by='(brand_id, collection_id)', tags=['collections']) }}
-- One row per collection: total reach (members' audiences summed) against unique reach (the
-- audience left once the same creator on two platforms and the audience members share are
-- counted once). Answers a brand manager's "how many people does this list really reach?".
-- Unique reach = total reach − Σ estimated shared audience of the collection's member pairs
-- (int_collections__member_pairs; second-order inclusion-exclusion), never below the largest
-- single member's audience. Deleted members and members without an audience are left out.
with members as (
    select
        collection_id,
        any(brand_id) as brand_id,
        toUInt64(count()) as live_members,
        toUInt64(uniqExact(creator_key)) as distinct_creators,
        sum(audience) as total_reach,
        sumIf(audience, platform = 'instagram') as instagram_reach,
        sumIf(audience, platform = 'youtube') as youtube_reach,
        max(audience) as largest_audience
    from {{ ref('int_collections__members') }}
    where not is_deleted and audience is not null
    group by collection_id
),
overlap as (
    select
        collection_id,
        toUInt64(count()) as member_pairs,
        toUInt64(countIf(overlap_method = 'commenters')) as pairs_from_commenters,
        toUInt64(countIf(overlap_method = 'same_creator')) as same_creator_pairs,
        sum(coalesce(estimated_shared_audience, 0)) as shared_audience
    from {{ ref('int_collections__member_pairs') }}
    group by collection_id
)
select
    toInt64(c.collection_id) as collection_id,
    toInt64(c.brand_id) as brand_id,
    toString(c.collection_name) as collection_name,
    toInt32(coalesce(m.live_members, 0)) as live_members,
    toInt32(coalesce(m.distinct_creators, 0)) as distinct_creators,
    toInt64(coalesce(m.total_reach, 0)) as total_reach,
    toInt64(coalesce(m.instagram_reach, 0)) as instagram_reach,
    toInt64(coalesce(m.youtube_reach, 0)) as youtube_reach,
    toInt64(coalesce(o.member_pairs, 0)) as member_pairs,
    toInt64(coalesce(o.pairs_from_commenters, 0)) as pairs_from_commenters,
    toInt64(coalesce(o.same_creator_pairs, 0)) as same_creator_pairs,
    toInt64(round(coalesce(o.shared_audience, 0))) as estimated_shared_audience,
    toInt64(greatest(toFloat64(coalesce(m.largest_audience, 0)), round(toFloat64(coalesce(m.total_reach, 0)) - coalesce(o.shared_audience, 0)))) as unique_reach,
    toNullable(toFloat64({{ safe_divide('greatest(toFloat64(coalesce(m.largest_audience, 0)), round(toFloat64(coalesce(m.total_reach, 0)) - coalesce(o.shared_audience, 0)))', 'm.total_reach') }})) as unique_reach_ratio
from {{ ref('stg_coffee__collections') }} as c
left join members as m on m.collection_id = c.collection_id
left join overlap as o on o.collection_id = c.collection_id
