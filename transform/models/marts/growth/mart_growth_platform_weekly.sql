{{ config(order_by='(platform, week_start)', tags=['growth']) }}
-- Weekly growth per platform (Instagram, YouTube): total audience and its change, median
-- relative growth, posts and engagement. The 'Trends' overview, and scraper operators' check
-- that a platform's weekly numbers move as expected.
{{ growth_segment_weekly('platform', 'platform') }}
