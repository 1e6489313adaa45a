{{ config(order_by='(platform, profile_key, week_start)', partition_by='toYYYYMM(week_start)', tags=['growth']) }}
-- Week-over-week growth per profile and ISO week: audience, posts and engagement of the posts
-- published that week, each with its change from the previous week with a scrape. The growth
-- chart of a profile page, which brand managers check before renewing a creator.
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toDate(week_start) as week_start,
    toUInt16(iso_year) as iso_year,
    toUInt8(iso_week) as iso_week,
    toNullable(toInt64(audience_end)) as audience_end,
    toNullable(toInt64(audience_change)) as audience_change,
    toNullable(toFloat64(audience_change_pct)) as audience_change_pct,
    toInt64(posts_end) as posts_end,
    toNullable(toInt64(posts_change)) as posts_change,
    toInt64(posts_published) as posts_published,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toNullable(toFloat64(engagement_rate - lagInFrame(engagement_rate) over w)) as engagement_rate_change,
    toLowCardinality(toString(audience_tier)) as audience_tier
from {{ ref('int_growth__profile_weeks') }}
window w as (partition by profile_key order by week_start rows between unbounded preceding and current row)
