-- The leaderboard summary's profile counts against staging: per platform, the profiles with a
-- snapshot that are not deleted (latest Beat request NotFound; argMax over a one-element tuple,
-- so a later success's NULL error class wins: a restored account); 'overall' is their sum.
with counts as (
    select 'instagram' as platform, uniqExact(profile_id) as profiles
    from {{ ref('stg_instagram__account_snapshots') }}
    where profile_id not in (select profile_id from {{ ref('stg_beat__instagram_profile_requests') }} group by profile_id having argMax(tuple(error_class), started_at).1 = 'NotFound')
    union all
    select 'youtube' as platform, uniqExact(s.channel_id) as profiles
    from {{ ref('stg_youtube__channel_snapshots') }} as s
    where s.channel_id in (select channel_id from {{ ref('stg_youtube__channels') }})
),
expected as (
    select 'platform' as dimension, platform as dimension_value, profiles from counts
    union all
    select 'overall' as dimension, 'all' as dimension_value, sum(profiles) as profiles from counts
)
select e.dimension, e.dimension_value, e.profiles as expected, s.profiles as found
from expected as e
left join {{ ref('mart_leaderboard_summary') }} as s
    on s.dimension = e.dimension and s.dimension_value = e.dimension_value
where s.profiles is distinct from e.profiles
