{{ config(materialized='table', order_by='(profile_key, language)', tags=['profile-ranking']) }}
-- One row per (profile, language): the language mix of what a creator publishes, the best proxy
-- for the language of its audience the sources give. YouTube: the default language of its
-- videos weighted by their views (channel language when no video declares one). Instagram: the
-- profile's inferred language (Beat infers one per profile; posts carry none).
with video_languages as (
    select
        concat('youtube:', m.channel_id) as profile_key,
        toString(v.video_language) as language,
        sum(toFloat64(m.views) + 1) as weight
    from {{ ref('int_youtube__video_metrics') }} as m
    inner join (
        select video_id, assumeNotNull(language) as video_language
        from {{ ref('stg_youtube__videos') }}
        where language is not null and language != ''
    ) as v on v.video_id = m.video_id
    group by profile_key, language
),
profiles as (
    select profile_key, platform, language from {{ ref('mart_profile_metrics') }}
),
spoken as (
    -- profiles whose own language is known (filtered before the cast below renames it)
    select profile_key, platform, assumeNotNull(language) as known_language
    from profiles
    where language is not null and language != ''
)
select
    profile_key,
    language,
    weight / sum(weight) over (partition by profile_key) as language_share,
    'video_languages' as source
from video_languages
where profile_key in (select profile_key from profiles)
union all
select
    profile_key,
    toString(known_language) as language,
    1.0 as language_share,
    if(platform = 'youtube', 'channel_language', 'profile_language') as source
from spoken
where profile_key not in (select profile_key from video_languages)
