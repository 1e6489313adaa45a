{{ config(materialized='table', order_by='(profile_key, country)', tags=['collections']) }}
-- One row per (profile, audience country): the best audience geography the sources give.
-- YouTube: Vidooly's audience shares by country (renormalised to sum to 1); a channel Vidooly
-- does not cover falls back to its own country. Instagram: no source gives an audience
-- breakdown (comments carry no country), so the profile's inferred country stands for its
-- audience. `source` says which; profiles with none of these have no rows. Tagged collections:
-- the collections tier (overlap, collection geography) is its most frequent reader.
with profiles as (
    select profile_key, platform, platform_id, country from {{ ref('mart_profile_metrics') }}
),
located as (
    -- profiles whose own country is known (filtered before the cast below renames it)
    select profile_key, platform, assumeNotNull(country) as known_country
    from profiles
    where country is not null and country != ''
),
vidooly as (
    select
        concat('youtube:', channel_id) as profile_key,
        country,
        share / sum(share) over (partition by channel_id) as normalised_share
    from (
        select channel_id, country, audience_share as share
        from {{ ref('stg_vidooly__channel_audience_countries') }}
        where audience_share > 0
    )
)
select profile_key, country, normalised_share as audience_share, 'vidooly' as source
from vidooly
where profile_key in (select profile_key from profiles where platform = 'youtube')
union all
select
    profile_key,
    toString(known_country) as country,
    1.0 as audience_share,
    if(platform = 'youtube', 'channel_country', 'profile_country') as source
from located
where profile_key not in (select profile_key from vidooly)
