{{ config(order_by='(platform, country, country_rank, post_key)', tags=['post-ranking']) }}
-- The best posts of each platform and creator country in the last var ranking_window_days days
-- before as_of by engagement rate, the top var ranking_top_n of each: what works in a market,
-- for a brand manager planning a campaign in one country.
with ranked as {{ top_posts(['platform', 'country'],
    where="hours_since_posted <= 24 * " ~ var('ranking_window_days')) }}
select
    {{ post_ranking_columns('r') }},
    toInt32(assumeNotNull(r.rank_in_group)) as country_rank,
    toInt64(r.group_posts) as country_posts,
    r.as_of as as_of
from ranked as r
