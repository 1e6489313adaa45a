{{ config(materialized='table', order_by='(collection_id, tracked_profile_id_a, tracked_profile_id_b)', tags=['collections']) }}
-- Every pair of live members inside one collection (never across collections: the pairs of a
-- collection of n members are n(n-1)/2, bounded by the collection's size) with an estimate of
-- the audience they share:
--   same_creator  the same handle on both platforms: var same_creator_overlap_rate (0.5) of the
--                 smaller audience;
--   commenters    both have at least var overlap_min_commenters (20) distinct commenters in the
--                 comments Beat fetched: shared commenters / the smaller commenter set (the
--                 overlap coefficient), applied to the smaller audience;
--   geography     otherwise, the similarity of their audience geographies (Σ over countries of
--                 the smaller share, int_audience__creator_countries) times the prior
--                 var overlap_geo_prior (0.05): two creators with identical geographies are
--                 assumed to share 5% of the smaller audience;
--   unknown       no geography for one of them: no estimate (NULL).
-- Shared commenters come per profile pair from int_audience__shared_commenters, commenter counts
-- from int_audience__profile_commenters. The table is the largest of the collections tier (about
-- Σ n²/2 rows), so it holds integer keys only; marts add profile keys for the rows they serve.
{% set min_commenters = var('overlap_min_commenters') %}
with members as (
    select
        collection_id,
        brand_id,
        collection_member_id,
        tracked_profile_id,
        platform = 'youtube' as is_youtube,
        cityHash64(creator_key) as creator_hash,
        audience
    from {{ ref('int_collections__members') }}
    where not is_deleted and audience is not null
),
member_profiles as (
    select tracked_profile_id, any(profile_key) as profile_key
    from {{ ref('int_collections__members') }}
    where not is_deleted and audience is not null
    group by tracked_profile_id
),
geographies as (
    select profile_key, CAST((groupArray(country), groupArray(audience_share)), 'Map(String, Float64)') as geo
    from {{ ref('int_audience__creator_countries') }}
    where profile_key in (select profile_key from member_profiles)
    group by profile_key
),
features as (
    -- one row per member profile, keyed by its integer id: what the pairs join twice
    select
        p.tracked_profile_id as tracked_profile_id,
        coalesce(cc.commenters, 0) as commenters,
        g.geo as geo
    from member_profiles as p
    left join {{ ref('int_audience__profile_commenters') }} as cc on cc.tracked_profile_id = p.tracked_profile_id
    left join geographies as g on g.profile_key = p.profile_key
),
pairs as (
    select
        a.collection_id as collection_id,
        a.brand_id as brand_id,
        a.collection_member_id as collection_member_id_a,
        b.collection_member_id as collection_member_id_b,
        a.tracked_profile_id as tracked_profile_id_a,
        b.tracked_profile_id as tracked_profile_id_b,
        a.audience as audience_a,
        b.audience as audience_b,
        a.creator_hash = b.creator_hash and a.is_youtube != b.is_youtube as is_same_creator
    from members as a
    inner join members as b on b.collection_id = a.collection_id
    where a.tracked_profile_id < b.tracked_profile_id
),
scored as (
    select
        pairs.collection_id as collection_id,
        pairs.brand_id as brand_id,
        pairs.collection_member_id_a as collection_member_id_a,
        pairs.collection_member_id_b as collection_member_id_b,
        pairs.tracked_profile_id_a as tracked_profile_id_a,
        pairs.tracked_profile_id_b as tracked_profile_id_b,
        pairs.audience_a as audience_a,
        pairs.audience_b as audience_b,
        fa.commenters as commenters_a,
        fb.commenters as commenters_b,
        coalesce(s.shared_commenters, 0) as shared_commenters,
        if(fa.geo is null or fb.geo is null, NULL,
           arraySum(arrayMap(k -> least(fa.geo[k], fb.geo[k]), mapKeys(fa.geo)))) as geo_similarity,
        multiIf(
            pairs.is_same_creator, 'same_creator',
            fa.commenters >= {{ min_commenters }} and fb.commenters >= {{ min_commenters }}, 'commenters',
            geo_similarity is not null, 'geography',
            'unknown') as overlap_method
    from pairs
    inner join features as fa on fa.tracked_profile_id = pairs.tracked_profile_id_a
    inner join features as fb on fb.tracked_profile_id = pairs.tracked_profile_id_b
    left join {{ ref('int_audience__shared_commenters') }} as s
        on s.tracked_profile_id_a = pairs.tracked_profile_id_a and s.tracked_profile_id_b = pairs.tracked_profile_id_b
)
select
    collection_id,
    brand_id,
    collection_member_id_a,
    collection_member_id_b,
    tracked_profile_id_a,
    tracked_profile_id_b,
    audience_a,
    audience_b,
    commenters_a,
    commenters_b,
    shared_commenters,
    geo_similarity,
    toLowCardinality(overlap_method) as overlap_method,
    multiIf(
        overlap_method = 'same_creator', toNullable(toFloat64({{ var('same_creator_overlap_rate') }})),
        overlap_method = 'commenters', toNullable(toFloat64(shared_commenters) / least(commenters_a, commenters_b)),
        overlap_method = 'geography', toNullable(least(1.0, geo_similarity) * {{ var('overlap_geo_prior') }}),
        NULL) as overlap_rate,
    overlap_rate * least(audience_a, audience_b) as estimated_shared_audience
from scored
