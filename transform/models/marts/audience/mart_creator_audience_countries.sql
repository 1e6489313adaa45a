{{ config(order_by='(profile_key, country_rank)', tags=['profile-ranking']) }}
-- One row per (profile, audience country): the share of the creator's audience in the country,
-- the audience it stands for, the country's rank for the creator and where the number comes
-- from (int_audience__creator_countries: Vidooly for YouTube channels it covers, else the
-- channel's or the Instagram profile's own country, as no source breaks an Instagram audience
-- down). The geography chart of a profile page, for brand managers targeting markets.
select
    toString(g.profile_key) as profile_key,
    toLowCardinality(toString(p.platform)) as platform,
    toLowCardinality(toString(g.country)) as country,
    toFloat64(g.audience_share) as audience_share,
    toNullable(toInt64(round(g.audience_share * p.audience))) as estimated_audience,
    toInt32(row_number() over (partition by g.profile_key order by g.audience_share desc, g.country)) as country_rank,
    toLowCardinality(toString(g.source)) as source
from {{ ref('int_audience__creator_countries') }} as g
inner join {{ ref('mart_profile_metrics') }} as p on p.profile_key = g.profile_key
