{{ config(order_by='(platform, category, score_rank, profile_key)', tags=['profile-ranking']) }}
-- The top creators of each platform and category by Stir creator score (var ranking_top_n):
-- the category pages a brand manager browses to shortlist creators for a campaign.
{{ creator_ranks(['platform', 'category'], top_n=var('ranking_top_n')) }}
