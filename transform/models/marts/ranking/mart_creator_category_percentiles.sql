{{ config(order_by='(platform, category, profile_key)', tags=['profile-ranking']) }}
-- Every creator's percentile and grade (1..5) within its platform and category for audience,
-- engagement, growth, cadence, consistency, comments-to-likes and the creator score: "top 10%
-- of Beauty creators for engagement", as the app's profile page and the brand manager's
-- shortlist filters show it. Adding a metric is one line (and its two contract columns).
{% set metrics = [
    'audience',
    'engagement_rate',
    'audience_growth_30d_pct',
    'posts_per_week',
    'consistency_score',
    'comment_like_ratio',
    'creator_score',
] %}
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toLowCardinality(toString(category)) as category,
    toInt32(count() over (partition by platform, category)) as category_profiles,
    {{ percentile_grades(metrics, buckets=5, partition_by=['platform', 'category']) }}
from {{ ref('int_ranking__creator_scores') }}
