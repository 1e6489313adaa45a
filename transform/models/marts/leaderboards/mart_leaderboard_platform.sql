{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Top creators per platform (Instagram, YouTube) by audience, with engagement and growth
-- ranks and 7-day movement: the leaderboard landing page everyone opens first.
{{ leaderboard_list([['platform']], 'audience_rank') }}
