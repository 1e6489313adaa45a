{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Top creators per country by audience (var leaderboard_size), with their engagement and
-- growth ranks and positions gained in 7 days: the app's 'Top creators in <country>' screen,
-- where a brand manager shortlists creators for a market.
{{ leaderboard_list([['country']], 'audience_rank') }}
