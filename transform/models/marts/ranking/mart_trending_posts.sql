{{ config(order_by='(platform, trending_rank, post_key)', tags=['post-ranking']) }}
-- Trending now: the posts and videos published in the last hours before as_of (var
-- trending_window_hours) with the most engagement per hour since publication, the top
-- var ranking_top_n per platform. The app's "Trending" feed for brand and campaign managers.
with trending as {{ top_posts(['platform'], metric='engagement_per_hour',
    where="hours_since_posted <= " ~ var('trending_window_hours')) }}
select
    {{ post_ranking_columns('t') }},
    toFloat64(t.hours_since_posted) as hours_since_posted,
    toInt32(assumeNotNull(t.rank_in_group)) as trending_rank,
    toInt64(t.group_posts) as platform_posts,
    t.as_of as as_of
from trending as t
