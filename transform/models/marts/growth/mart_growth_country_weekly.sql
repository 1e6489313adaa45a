{{ config(order_by='(country, week_start)', tags=['growth']) }}
-- Weekly growth per country: profiles, total audience and its change, median relative growth,
-- growing and declining profiles, posts and engagement. Campaign managers choosing a market
-- read it on the 'Trends by market' screen.
{{ growth_segment_weekly('country', 'country') }}
