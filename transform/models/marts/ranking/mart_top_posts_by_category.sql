{{ config(order_by='(platform, category, category_rank, post_key)', tags=['post-ranking']) }}
-- The best posts of each platform and category in the last var ranking_window_days days before
-- as_of by engagement rate, the top var ranking_top_n of each: the category inspiration board
-- a brand manager browses for content ideas and the creators behind them.
with ranked as {{ top_posts(['platform', 'category'],
    where="hours_since_posted <= 24 * " ~ var('ranking_window_days')) }}
select
    {{ post_ranking_columns('r') }},
    toInt32(assumeNotNull(r.rank_in_group)) as category_rank,
    toInt64(r.group_posts) as category_posts,
    r.as_of as as_of
from ranked as r
