-- The creator baseline of every post in mart_post_performance, recomputed another way: each
-- creator's posts of the lookback window as one array in publication order, and for each post
-- the median engagement of the up to N posts before it (arrays instead of window frames).
{% set n = var('baseline_posts') %}
{% set min_posts = var('baseline_min_posts') %}
with posts as (
    select
        concat('instagram:', toString(p.profile_id)) as profile_key,
        concat('instagram:', toString(p.post_id)) as post_key,
        p.posted_at as posted_at,
        toUInt64(coalesce(p.likes, 0) + coalesce(p.comments, 0)) as engagement
    from {{ ref('int_instagram__post_metrics') }} as p final
    where p.posted_at > (select any(as_of) from {{ ref('int_instagram__profiles') }}) - interval {{ var('ranking_lookback_days') }} day
),
histories as (
    select profile_key, arraySort(x -> (x.1, x.2), groupArray((posted_at, post_key, engagement))) as history
    from posts
    group by profile_key
),
expected as (
    select
        post.2 as post_key,
        arraySlice(history, greatest(1, i - {{ n }}), least(i - 1, {{ n }})) as previous
    from histories
    array join history as post, arrayEnumerate(history) as i
)
select m.post_key, m.baseline_engagement, e.previous
from {{ ref('mart_post_performance') }} as m
inner join expected as e on e.post_key = m.post_key
where m.platform = 'instagram'
  and (
    m.baseline_posts != length(e.previous)
    or (length(e.previous) >= {{ min_posts }}
        and abs(m.baseline_engagement - arrayReduce('quantileExact(0.5)', arrayMap(x -> x.3, e.previous))) > 1e-9)
    or (length(e.previous) < {{ min_posts }} and m.baseline_engagement is not null)
  )
