{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Top creators per Stir category by audience, with engagement and growth ranks and 7-day
-- movement: the 'Top <category> creators' screen brand managers browse for their vertical.
{{ leaderboard_list([['category']], 'audience_rank') }}
