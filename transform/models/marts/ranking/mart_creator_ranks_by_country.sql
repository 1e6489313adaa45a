{{ config(order_by='(platform, country, score_rank, profile_key)', tags=['profile-ranking']) }}
-- The top creators of each platform and country by Stir creator score (var ranking_top_n): the
-- market view a brand manager uses to find creators for a launch in one country.
{{ creator_ranks(['platform', 'country'], top_n=var('ranking_top_n')) }}
