-- The headline leaderboard (mart_leaderboards) follows the rules transform/README.md states for
-- every leaderboard: a profile below var leaderboard_min_audience followers (or without an
-- audience) holds no engagement or growth rank in any dimension, and engagement is ranked per
-- platform (Instagram's rate is per follower, YouTube's per view). The second rule is checked on
-- the country dimension against a ranking recomputed here from mart_profile_metrics: every
-- engagement rank listed agrees, and every profile within the top list is on it. Returns the
-- disagreements.
{% set min_audience = var('leaderboard_min_audience') %}
{% set size = var('leaderboard_size') %}
with board as (
    select * from {{ ref('mart_leaderboards') }}
),
expected as (
    select
        profile_key,
        coalesce(toString(country), 'unknown') as country,
        rank() over (partition by coalesce(toString(country), 'unknown'), platform order by engagement_rate desc) as engagement_rank
    from {{ ref('mart_profile_metrics') }}
    where not is_deleted and engagement_rate is not null and audience >= {{ min_audience }}
),
listed as (
    select profile_key, dimension_value as listed_country, assumeNotNull(engagement_rank) as listed_rank
    from board
    -- (aliases other than the columns: ClickHouse's WHERE sees SELECT aliases)
    where dimension = 'country' and engagement_rank is not null
)
select dimension, dimension_value, profile_key, 'ranked below the minimum audience' as problem
from board
where (audience is null or audience < {{ min_audience }})
  and (engagement_rank is not null or growth_rank is not null)
union all
select 'country' as dimension, listed_country as dimension_value, profile_key,
    'engagement rank is not the per-platform rank' as problem
from listed
where (profile_key, listed_country, listed_rank)
    not in (select profile_key, country, toUInt64(engagement_rank) from expected)
union all
select 'country' as dimension, country as dimension_value, profile_key,
    'missing from its engagement top list' as problem
from expected
where engagement_rank <= {{ size }}
  and (profile_key, country) not in (select profile_key, listed_country from listed)
