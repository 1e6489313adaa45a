{{ config(order_by='(category, category_rank, post_key)', tags=['post-ranking']) }}
-- The most watched YouTube videos of each category published in the last var
-- ranking_window_days days before as_of, the top var ranking_top_n of each by views (with their
-- views per hour of age): the YouTube category board a brand manager reads for video creators.
with ranked as {{ top_posts(['category'], metric='views',
    where="platform = 'youtube' and hours_since_posted <= 24 * " ~ var('ranking_window_days')) }}
select
    {{ post_ranking_columns('r') }},
    toBool(cast(r.media_type, 'String') = 'short') as is_short,
    toNullable(toFloat64({{ safe_divide('r.views', 'r.age_hours') }})) as views_per_hour,
    toInt32(assumeNotNull(r.rank_in_group)) as category_rank,
    toInt64(r.group_posts) as category_videos,
    r.as_of as as_of
from ranked as r
