-- Every trending post's engagement equals likes + comments of its newest raw snapshot (hidden
-- counts as 0), it was published within the trending window before as_of, and no post of that
-- window outside the list moves faster than the list's slowest post of its platform.
-- (Unmatched joins are tested as '' or NULL: tests run without join_use_nulls.)
{% set hours = var('trending_window_hours') %}
with snapshots as (
    select concat('instagram:', toString(post_id)) as post_key,
           argMax(coalesce(likes, 0) + coalesce(comments, 0), scraped_at) as engagement
    from {{ ref('stg_instagram__post_snapshots') }}
    group by post_id
    union all
    select concat('youtube:', video_id) as post_key,
           argMax(coalesce(likes, 0) + coalesce(comments, 0), scraped_at) as engagement
    from {{ ref('stg_youtube__video_snapshots') }}
    group by video_id
),
trending as (
    select * from {{ ref('mart_trending_posts') }}
),
slowest as (
    select platform, count() as listed, min(engagement_per_hour) as slowest_listed from trending group by platform
)
select t.post_key, 'engagement differs from the raw snapshots' as problem
from trending as t
left join snapshots as s on s.post_key = t.post_key
where coalesce(s.post_key, '') = '' or toUInt64(s.engagement) != t.engagement
union all
select post_key, 'outside the trending window' as problem
from trending
where posted_at <= as_of - interval {{ hours }} hour
union all
select p.post_key, 'a faster post is missing' as problem
from {{ ref('int_ranking__posts') }} as p
inner join slowest on slowest.platform = p.platform
where p.hours_since_posted <= {{ hours }}
  and slowest.listed >= {{ var('ranking_top_n') }}
  and p.engagement_per_hour > slowest.slowest_listed
  and p.post_key not in (select post_key from trending)
