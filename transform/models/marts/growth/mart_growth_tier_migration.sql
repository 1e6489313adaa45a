{{ config(order_by='(platform, week_start, from_tier, to_tier)', tags=['growth']) }}
-- Audience-size migration: per platform and week, how many profiles moved from each audience
-- tier (at the previous week with a scrape) to each tier (at the week's end), up, down or
-- staying. Brand managers watch creators graduate from nano to micro (and prices with them);
-- the 'Tier moves' chart on the Trends screen.
with moves as (
    select
        platform,
        week_start,
        assumeNotNull(audience_tier_previous) as from_tier,
        audience_tier as to_tier,
        count() as profiles
    from {{ ref('int_growth__profile_weeks') }}
    where audience_tier_previous is not null
    group by platform, week_start, from_tier, to_tier
)
select
    toLowCardinality(toString(platform)) as platform,
    toDate(week_start) as week_start,
    toLowCardinality(toString(from_tier)) as from_tier,
    toLowCardinality(toString(to_tier)) as to_tier,
    toLowCardinality(toString(multiIf(
        {{ audience_tier_level('from_tier') }} = 0 or {{ audience_tier_level('to_tier') }} = 0, 'unknown',
        {{ audience_tier_level('to_tier') }} > {{ audience_tier_level('from_tier') }}, 'up',
        {{ audience_tier_level('to_tier') }} < {{ audience_tier_level('from_tier') }}, 'down',
        'same'
    ))) as direction,
    toInt32(profiles) as profiles,
    toFloat64(profiles / sum(profiles) over (partition by platform, week_start, from_tier)) as share_of_from_tier
from moves
