{{ config(order_by='(platform, viral_rank, post_key)', tags=['post-ranking']) }}
-- Viral posts: posts and videos of the last var ranking_window_days days before as_of with at
-- least var viral_ratio_threshold times their creator's baseline engagement (median of the
-- previous var baseline_posts posts), ranked by that ratio per platform, so a small creator's
-- breakout shows next to a star's routine post. Brand managers read it as the Breakouts feed.
select
    {{ post_ranking_columns('p') }},
    toInt32(p.baseline_posts) as baseline_posts,
    toFloat64(p.baseline_engagement) as baseline_engagement,
    toFloat64(p.engagement_vs_baseline) as engagement_vs_baseline,
    toInt64(rank() over (partition by p.platform order by p.engagement_vs_baseline desc)) as viral_rank,
    p.as_of as as_of
from {{ ref('int_ranking__posts') }} as p
where p.hours_since_posted <= 24 * {{ var('ranking_window_days') }}
  and p.engagement_vs_baseline >= {{ var('viral_ratio_threshold') }}
