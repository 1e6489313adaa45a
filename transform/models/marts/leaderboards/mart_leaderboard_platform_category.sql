{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Top creators per platform and category ('Instagram fitness'): the 'Top creators' screen
-- with a platform and a category filter, read by brand managers scouting a vertical.
{{ leaderboard_list([['platform', 'category']], 'audience_rank') }}
