{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Growth leaders, overall and per category: the fastest relative audience growth over 30 days
-- among profiles with at least var leaderboard_min_audience (1,000) followers. The 'Fastest
-- growing' screen, where brand managers find creators before they get expensive.
{{ leaderboard_list([['overall'], ['category']], 'growth_rank') }}
