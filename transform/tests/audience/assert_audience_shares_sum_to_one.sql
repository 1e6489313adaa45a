-- Every creator's audience countries and languages, and every collection's audience geography,
-- add up to 1; and a YouTube channel's Vidooly shares are the raw estimate's map renormalised.
-- Returns what does not.
with raw_vidooly as (
    select channel_id, argMax(audience_countries, estimated_at) as countries
    from {{ source('vidooly', 'channel_estimates') }}
    group by channel_id
),
raw_shares as (
    select concat('youtube:', channel_id) as profile_key, toString(country) as country,
           share / sum(share) over (partition by channel_id) as expected_share
    from raw_vidooly
    array join mapKeys(countries) as country, mapValues(countries) as share
    where share > 0
)
select 'creator_countries' as problem, profile_key as id, sum(audience_share) as total
from {{ ref('mart_creator_audience_countries') }}
group by profile_key
having abs(total - 1) > 1e-6
union all
select 'creator_languages', profile_key, sum(language_share)
from {{ ref('mart_creator_audience_languages') }}
group by profile_key
having abs(sum(language_share) - 1) > 1e-6
union all
select 'collection_countries', toString(collection_id), sum(audience_share)
from {{ ref('mart_collection_audience_countries') }}
group by collection_id
having abs(sum(audience_share) - 1) > 1e-6
union all
select 'vidooly_share', concat(m.profile_key, '/', m.country), m.audience_share
from {{ ref('mart_creator_audience_countries') }} as m
inner join raw_shares as r on r.profile_key = m.profile_key and r.country = m.country
where m.source = 'vidooly' and abs(m.audience_share - r.expected_share) > 1e-5
