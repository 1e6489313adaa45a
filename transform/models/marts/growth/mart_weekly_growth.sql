{{ config(order_by='(platform, profile_key, week_start)', partition_by='toYYYYMM(week_start)', tags=['growth']) }}
-- Weekly growth per profile on every platform: the audience at the last scrape of each week
-- (latest(): NULL when that scrape hid it), its change from the previous week with a scrape,
-- and the weekly change in posts.
{{ period_growth('toMonday', 'week_start') }}
