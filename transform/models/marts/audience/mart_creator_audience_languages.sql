{{ config(order_by='(profile_key, language_rank)', tags=['profile-ranking']) }}
-- One row per (profile, language): the share of the creator's content in the language and its
-- rank (int_audience__creator_languages: the view-weighted default language of a channel's
-- videos, else the channel's or Instagram profile's language) — the best proxy for the
-- language its audience speaks. The language chart of a profile page, for brand managers
-- matching a campaign's language.
select
    toString(l.profile_key) as profile_key,
    toLowCardinality(toString(p.platform)) as platform,
    toLowCardinality(toString(l.language)) as language,
    toFloat64(l.language_share) as language_share,
    toInt32(row_number() over (partition by l.profile_key order by l.language_share desc, l.language)) as language_rank,
    toLowCardinality(toString(l.source)) as source
from {{ ref('int_audience__creator_languages') }} as l
inner join {{ ref('mart_profile_metrics') }} as p on p.profile_key = l.profile_key
