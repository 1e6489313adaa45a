{{ config(order_by='(platform, profile_key, month_start)', tags=['growth']) }}
-- Monthly growth per profile: audience and posts at the month's last scrape and their change
-- from the previous month with a scrape; the newest month is flagged partial. The monthly
-- report brand managers export for a creator's renewal, and the 12-month chart of profile pages.
with monthly as (
    {{ period_growth('toStartOfMonth', 'month_start') }}
)
select
    *,
    toBool(month_start = max(month_start) over (partition by platform)) as is_partial
from monthly
