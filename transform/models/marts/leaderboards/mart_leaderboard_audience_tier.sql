{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Top creators within each audience tier (nano, micro, macro, mega): brands with a budget for
-- one tier (micro-influencer programmes) compare like with like on the 'Top by size' screen.
{{ leaderboard_list([['audience_tier']], 'audience_rank') }}
