{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Engagement leaders per platform and per platform and category: the highest engagement rate
-- among profiles with at least var leaderboard_min_audience (1,000) followers. Per platform,
-- because Instagram's rate is per follower and YouTube's per view: they do not compare. Brand
-- managers who buy interaction rather than reach read it on the 'Most engaging' screen.
{{ leaderboard_list([['platform'], ['platform', 'category']], 'engagement_rank') }}
