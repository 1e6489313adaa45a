{{ config(order_by='(dimension, dimension_value, list_rank, profile_key)', tags=['leaderboards']) }}
-- Top creators per content language by audience: campaign managers planning a
-- language-specific campaign (Hindi, Tamil...) read it on the 'Top creators by language' screen.
{{ leaderboard_list([['language']], 'audience_rank') }}
