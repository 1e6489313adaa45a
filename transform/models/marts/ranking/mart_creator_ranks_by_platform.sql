{{ config(order_by='(platform, score_rank, profile_key)', tags=['profile-ranking']) }}
-- Every non-deleted creator ranked by the Stir creator score within its platform (audience,
-- engagement and growth percentiles plus consistency): the "#n on Instagram" badge of the app's
-- profile page and the default sort of its creator search.
{{ creator_ranks(['platform']) }}
