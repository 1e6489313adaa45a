{{ config(order_by='(hashtag, hashtag_rank, post_key)', tags=['post-ranking']) }}
-- The best Instagram posts of each hashtag in the last var ranking_window_days days before
-- as_of by engagement rate, the top var ranking_hashtag_top_n of each: the hashtag explorer a
-- brand manager uses to see who performs on a campaign's or a competitor's hashtag.
with tagged as (
    select h.hashtag as hashtag, p.*
    from {{ ref('int_ranking__posts') }} as p
    inner join {{ ref('stg_instagram__post_hashtags') }} as h
        on concat('instagram:', toString(h.post_id)) = p.post_key
    where p.platform = 'instagram' and p.hours_since_posted <= 24 * {{ var('ranking_window_days') }}
),
ranked as {{ top_posts(['hashtag'], top_n=var('ranking_hashtag_top_n'), relation='tagged') }}
select
    toString(r.hashtag) as hashtag,
    {{ post_ranking_columns('r') }},
    toInt32(assumeNotNull(r.rank_in_group)) as hashtag_rank,
    toInt64(r.group_posts) as hashtag_posts,
    r.as_of as as_of
from ranked as r
