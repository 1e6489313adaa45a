{{ config(order_by='(collection_id, country_rank)', tags=['profile-ranking']) }}
-- One row per (collection, country): where a collection's combined audience lives — each live
-- member's geography (int_audience__creator_countries) weighted by its audience (macro
-- weighted_share), the audience that stands for, members with audience there, and how much of
-- the collection's audience has a known geography. Brand managers check that a list reaches
-- the markets the brand sells in.
with members as (
    select m.collection_id as collection_id, m.brand_id as brand_id, m.profile_key as profile_key, m.audience as audience
    from {{ ref('int_collections__members') }} as m
    where not m.is_deleted and m.audience > 0
),
located as (
    select
        m.collection_id as collection_id,
        any(m.brand_id) as brand_id,
        sumIf(m.audience, m.profile_key in (select profile_key from {{ ref('int_audience__creator_countries') }})) as located_audience,
        sum(m.audience) as total_audience
    from members as m
    group by m.collection_id
),
mix as (
    select
        m.collection_id as collection_id,
        g.country as country,
        {{ weighted_share('g.audience_share', 'm.audience', 'any(l.located_audience)') }} as audience_share,
        sum(g.audience_share * m.audience) as estimated_audience,
        count() as members_present,
        any(l.brand_id) as brand_id,
        any(l.located_audience) as located_audience,
        any(l.total_audience) as total_audience
    from members as m
    inner join {{ ref('int_audience__creator_countries') }} as g on g.profile_key = m.profile_key
    inner join located as l on l.collection_id = m.collection_id
    group by m.collection_id, g.country
)
select
    toInt64(collection_id) as collection_id,
    toInt64(brand_id) as brand_id,
    toLowCardinality(toString(country)) as country,
    toFloat64(audience_share) as audience_share,
    toInt64(round(estimated_audience)) as estimated_audience,
    toInt32(members_present) as members_present,
    toInt32(row_number() over (partition by collection_id order by audience_share desc, country)) as country_rank,
    toNullable(toFloat64({{ safe_divide('located_audience', 'total_audience') }})) as geography_coverage
from mix
