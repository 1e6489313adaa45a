{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Top creators per platform and country ('YouTube in Brazil'): campaign managers planning a
-- single-platform campaign in one market read it on the 'Top creators' screen.
{{ leaderboard_list([['platform', 'country']], 'audience_rank') }}
