{{ config(order_by='(platform, week_start, week_rank, post_key)', tags=['post-ranking']) }}
-- The best posts of each platform and publication week (Monday) over the last var ranking_weeks
-- weeks before as_of by engagement rate, the top var ranking_top_n of each week: the weekly
-- "best of" digest campaign managers send and the app's week-by-week archive.
with ranked as {{ top_posts(['platform', 'week_start'],
    where="week_start > toMonday(as_of) - interval " ~ var('ranking_weeks') ~ " week") }}
select
    toDate(r.week_start) as week_start,
    {{ post_ranking_columns('r') }},
    toInt32(assumeNotNull(r.rank_in_group)) as week_rank,
    toInt64(r.group_posts) as week_posts,
    r.as_of as as_of
from ranked as r
