{{ config(order_by='(platform, profile_key, month_start)', tags=['growth']) }}
-- Monthly growth per profile: audience and posts at the month's last scrape and their change
-- from the previous month with a scrape; the newest month is flagged partial. The monthly
-- report brand managers export for a creator's renewal, and the 12-month chart of profile pages.
with monthly as (
    {{ period_audience('toStartOfMonth') }}
),
with_previous as (
    select
        *,
        lagInFrame(toNullable(audience_end)) over w as audience_previous,
        lagInFrame(toNullable(posts_end)) over w as posts_previous,
        max(period_start) over (partition by platform) as newest_month
    from monthly
    window w as (partition by profile_key order by period_start rows between unbounded preceding and current row)
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toDate(period_start) as month_start,
    toNullable(toUInt64(audience_end)) as audience_end,
    toNullable(toInt64(audience_end) - toInt64(audience_previous)) as audience_change,
    toNullable(toFloat64({{ growth_pct('audience_end', 'audience_previous') }})) as audience_change_pct,
    toUInt64(posts_end) as posts_end,
    toNullable(toInt64(posts_end) - toInt64(posts_previous)) as posts_change,
    toUInt64(snapshots) as snapshots,
    toBool(period_start = newest_month) as is_partial
from with_previous
