{{ config(order_by='(category, week_start)', tags=['growth']) }}
-- Weekly growth per Stir category: profiles, total audience and its change, median relative
-- growth, growing and declining profiles, posts and engagement. Brand managers compare the
-- momentum of verticals on the 'Trends' screen before choosing where to spend.
{{ growth_segment_weekly('category', 'category') }}
