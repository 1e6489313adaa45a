{{ config(order_by='(platform, cohort_week, weeks_since)', tags=['growth']) }}
-- Cohort growth curves: profiles grouped by the week they were first scraped, per platform, and
-- their median relative audience growth 1, 2, 4, 8 and 12 weeks later (against the audience at
-- the end of their first week). Brand managers see how fast newly tracked creators grow;
-- scraper operators see whether newly added profiles are measured on schedule.
{% set checkpoints = [1, 2, 4, 8, 12] %}
with weeks as (
    select * from {{ ref('int_growth__profile_weeks') }}
),
base as (
    select profile_key, platform, cohort_week, audience_end as base_audience
    from weeks
    where weeks_since_cohort = 0
),
cohorts as (
    select platform, cohort_week, count() as cohort_profiles
    from base
    group by platform, cohort_week
),
pairs as (
    select
        b.platform as platform,
        b.cohort_week as cohort_week,
        w.weeks_since_cohort as weeks_since,
        {{ growth_pct('w.audience_end', 'b.base_audience') }} as growth
    from base as b
    inner join (
        select profile_key, weeks_since_cohort, audience_end
        from weeks
        where weeks_since_cohort in ({{ checkpoints | join(', ') }})
    ) as w on w.profile_key = b.profile_key
),
curve as (
    select
        platform,
        cohort_week,
        weeks_since,
        count() as profiles_measured,
        quantilesExactIf(0.25, 0.5, 0.75)(growth, growth is not null) as q
    from pairs
    group by platform, cohort_week, weeks_since
)
select
    toLowCardinality(toString(c.platform)) as platform,
    toDate(c.cohort_week) as cohort_week,
    toUInt8(c.weeks_since) as weeks_since,
    toInt32(s.cohort_profiles) as cohort_profiles,
    toInt32(c.profiles_measured) as profiles_measured,
    toNullable(toFloat64(if(empty(c.q) or isNaN(c.q[2]), null, c.q[1]))) as p25_growth_pct,
    toNullable(toFloat64(if(empty(c.q) or isNaN(c.q[2]), null, c.q[2]))) as median_growth_pct,
    toNullable(toFloat64(if(empty(c.q) or isNaN(c.q[2]), null, c.q[3]))) as p75_growth_pct,
    -- the first week of the retained history also holds every profile tracked before it
    toBool(c.cohort_week = min(c.cohort_week) over (partition by c.platform)) as is_history_start
from curve as c
inner join cohorts as s on s.platform = c.platform and s.cohort_week = c.cohort_week
