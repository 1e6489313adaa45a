-- One row per (channel, audience country): the newest estimate's audience map, unnested.
select
    channel_id,
    toString(country) as country,
    toFloat64(share) as audience_share
from {{ ref('stg_vidooly__channel_estimates') }}
array join mapKeys(audience_countries) as country, mapValues(audience_countries) as share
