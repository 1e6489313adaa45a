{{ config(order_by='(audience_tier, week_start)', tags=['growth']) }}
-- Weekly growth per audience tier (nano, micro, macro, mega at the week's end): do small
-- creators grow faster than big ones? Brand managers planning a micro-influencer programme
-- read it on the 'Trends by size' screen.
{{ growth_segment_weekly('audience_tier', 'audience_tier') }}
