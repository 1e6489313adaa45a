{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Top creators per country and category ('beauty in India'): the most specific shortlist a
-- brand manager starts a campaign from, on the 'Top creators' screen with both filters set.
{{ leaderboard_list([['country', 'category']], 'audience_rank') }}
