{{ config(order_by='(platform, profile_key, posted_at, post_key)', tags=['post-ranking']) }}
-- Every post and video of the last var ranking_window_days days before as_of against its
-- creator's baseline (the median engagement of their previous var baseline_posts posts): above,
-- typical or below. Campaign managers read it to judge each sponsored post against what the
-- creator usually gets, not against the whole platform.
select
    {{ post_ranking_columns('p') }},
    toInt32(p.baseline_posts) as baseline_posts,
    toNullable(toFloat64(p.baseline_engagement)) as baseline_engagement,
    toNullable(toFloat64(p.engagement_vs_baseline)) as engagement_vs_baseline,
    toLowCardinality(toString(multiIf(
        p.engagement_vs_baseline is null, 'no_baseline',
        p.engagement_vs_baseline >= 1.25, 'above',
        p.engagement_vs_baseline <= 0.8, 'below',
        'typical'))) as performance,
    toInt32(p.recency_index) as creator_post_recency,
    p.as_of as as_of
from {{ ref('int_ranking__posts') }} as p
where p.hours_since_posted <= 24 * {{ var('ranking_window_days') }}
