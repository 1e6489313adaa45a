-- Cohort sizes against staging: a cohort holds the profiles whose first scrape falls in its
-- week. Returns the (platform, cohort week) whose size differs; a cohort whose profiles have
-- no later scrape at the checkpoints is absent from the mart and not compared.
with first_scrapes as (
    select 'instagram' as platform, toMonday(min(scraped_at)) as cohort_week
    from {{ ref('stg_instagram__account_snapshots') }}
    group by profile_id
    union all
    select 'youtube' as platform, toMonday(min(scraped_at)) as cohort_week
    from {{ ref('stg_youtube__channel_snapshots') }}
    group by channel_id
),
expected as (
    select platform, cohort_week, count() as profiles from first_scrapes group by platform, cohort_week
)
select m.platform, m.cohort_week, any(m.cohort_profiles) as found, any(e.profiles) as expected
from {{ ref('mart_growth_cohorts') }} as m
left join expected as e on e.platform = m.platform and e.cohort_week = m.cohort_week
group by m.platform, m.cohort_week
having found is distinct from expected or countDistinct(m.cohort_profiles) > 1
