{{ config(order_by='(category, week_start, growth_rank)', tags=['growth']) }}
-- Fastest-growing profiles per category and week: the top var growth_leaders_size (10) by
-- relative audience growth over the previous week with a scrape, among profiles that started
-- the week with at least var growth_leaders_min_audience (1,000) followers. The weekly
-- 'Breakout creators' email brand managers get for their categories.
with candidates as (
    select
        *,
        coalesce(category, 'unknown') as category_value,
        row_number() over (partition by category_value, week_start order by audience_change_pct desc, profile_key) as growth_rank
    from {{ ref('int_growth__profile_weeks') }}
    where audience_change_pct is not null
      and toInt64(audience_end) - audience_change >= {{ var('growth_leaders_min_audience') }}
)
select
    toLowCardinality(toString(category_value)) as category,
    toDate(week_start) as week_start,
    toInt32(growth_rank) as growth_rank,
    toString(profile_key) as profile_key,
    toLowCardinality(toString(platform)) as platform,
    toNullable(toString(handle)) as handle,
    toInt64(assumeNotNull(audience_end)) as audience_end,
    toInt64(assumeNotNull(audience_change)) as audience_change,
    toFloat64(assumeNotNull(audience_change_pct)) as audience_change_pct
from candidates
where growth_rank <= {{ var('growth_leaders_size') }}
