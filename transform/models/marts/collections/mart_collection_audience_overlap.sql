{{ config(order_by='(collection_id, overlap_rank)', tags=['collections']) }}
-- The member pairs of each collection that share the most audience (top var
-- collection_overlap_pairs, 50, per collection by estimated shared audience): which creators of
-- a list reach the same people, so a campaign manager does not pay twice for one audience.
-- Estimates and their method come from int_collections__member_pairs.
with top_lists as (
    -- the top pairs of each collection in one aggregation pass (groupArraySorted keeps the N
    -- smallest tuples: negated shared audience first, ties by profile ids), no sort of all pairs
    select
        collection_id,
        any(brand_id) as brand_id,
        groupArraySorted({{ var('collection_overlap_pairs') }})((
            -estimated_shared_audience, tracked_profile_id_a, tracked_profile_id_b,
            collection_member_id_a, collection_member_id_b, audience_a, audience_b,
            shared_commenters, geo_similarity, toString(overlap_method), overlap_rate)) as top
    from {{ ref('int_collections__member_pairs') }}
    where overlap_rate > 0
    group by collection_id
),
top_pairs as (
    select
        collection_id,
        brand_id,
        overlap_rank,
        -pair.1 as estimated_shared_audience,
        pair.4 as collection_member_id_a,
        pair.5 as collection_member_id_b,
        pair.6 as audience_a,
        pair.7 as audience_b,
        pair.8 as shared_commenters,
        pair.9 as geo_similarity,
        pair.10 as overlap_method,
        pair.11 as overlap_rate
    from top_lists
    array join top as pair, arrayEnumerate(top) as overlap_rank
)
select
    toInt64(p.collection_id) as collection_id,
    toInt64(p.brand_id) as brand_id,
    toString(a.profile_key) as profile_key_a,
    toString(b.profile_key) as profile_key_b,
    toInt64(p.collection_member_id_a) as collection_member_id_a,
    toInt64(p.collection_member_id_b) as collection_member_id_b,
    toInt64(p.audience_a) as audience_a,
    toInt64(p.audience_b) as audience_b,
    toInt64(p.shared_commenters) as shared_commenters,
    toNullable(toFloat64(p.geo_similarity)) as geo_similarity,
    toLowCardinality(toString(p.overlap_method)) as overlap_method,
    toFloat64(p.overlap_rate) as overlap_rate,
    toInt64(round(p.estimated_shared_audience)) as estimated_shared_audience,
    toInt32(p.overlap_rank) as overlap_rank
from top_pairs as p
inner join {{ ref('int_collections__members') }} as a on a.collection_member_id = p.collection_member_id_a
inner join {{ ref('int_collections__members') }} as b on b.collection_member_id = p.collection_member_id_b
