{{ config(order_by='(category, week_start)', tags=['growth']) }}
-- The distribution of weekly relative audience growth per category and week (and 'all'
-- categories): percentiles 10..90, mean and the share of profiles that grew. Brand managers
-- judge whether a creator's week is exceptional for the category ("top 10% this week").
with weeks as (
    select coalesce(category, 'unknown') as category_value, week_start, audience_change_pct
    from {{ ref('int_growth__profile_weeks') }}
    where audience_change_pct is not null
),
grouped as (
    select
        if(grouping(category_value) = 1, 'all', category_value) as category,
        week_start,
        count() as profiles_measured,
        quantilesExact(0.1, 0.25, 0.5, 0.75, 0.9)(audience_change_pct) as q,
        avg(audience_change_pct) as mean_growth_pct,
        avg(audience_change_pct > 0) as growing_share
    from weeks
    group by grouping sets ((category_value, week_start), (week_start))
)
select
    toLowCardinality(toString(category)) as category,
    toDate(week_start) as week_start,
    toInt32(profiles_measured) as profiles_measured,
    toFloat64(q[1]) as p10_growth_pct,
    toFloat64(q[2]) as p25_growth_pct,
    toFloat64(q[3]) as p50_growth_pct,
    toFloat64(q[4]) as p75_growth_pct,
    toFloat64(q[5]) as p90_growth_pct,
    toFloat64(assumeNotNull(mean_growth_pct)) as mean_growth_pct,
    toFloat64(assumeNotNull(growing_share)) as growing_share
from grouped
