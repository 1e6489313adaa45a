{{ config(order_by='(platform, category, country_rank)', tags=['profile-ranking']) }}
-- The top var category_top_countries (10) audience countries of each Stir category, per
-- platform and across both ('all'): the audience-weighted geography (macro weighted_share) of
-- the category's live creators, the audience it stands for and how many creators have audience
-- there. Brand managers planning a market entry see which categories reach it.
with creators as (
    select
        p.platform as platform,
        toString(assumeNotNull(p.category)) as category,
        p.profile_key as profile_key,
        p.audience as audience
    from {{ ref('mart_profile_metrics') }} as p
    where not p.is_deleted and p.category is not null and p.audience > 0
      and p.profile_key in (select profile_key from {{ ref('int_audience__creator_countries') }})
),
scoped as (
    select toString(platform) as platform, category, profile_key, audience from creators
    union all
    select 'all' as platform, category, profile_key, audience from creators
),
totals as (
    select platform, category, sum(audience) as located_audience, count() as creators
    from scoped
    group by platform, category
),
mix as (
    select
        s.platform as platform,
        s.category as category,
        g.country as country,
        {{ weighted_share('g.audience_share', 's.audience', 'any(t.located_audience)') }} as audience_share,
        sum(g.audience_share * s.audience) as estimated_audience,
        count() as creators_present,
        any(t.creators) as category_creators
    from scoped as s
    inner join {{ ref('int_audience__creator_countries') }} as g on g.profile_key = s.profile_key
    inner join totals as t on t.platform = s.platform and t.category = s.category
    group by s.platform, s.category, g.country
)
select
    toLowCardinality(toString(platform)) as platform,
    toLowCardinality(toString(category)) as category,
    toLowCardinality(toString(country)) as country,
    toFloat64(audience_share) as audience_share,
    toInt64(round(estimated_audience)) as estimated_audience,
    toInt32(creators_present) as creators_present,
    toInt32(category_creators) as category_creators,
    toInt32(row_number() over (partition by platform, category order by audience_share desc, country)) as country_rank
from mix
order by platform, category, audience_share desc, country
limit {{ var('category_top_countries') }} by platform, category
