{{ config(order_by='profile_id', tags=['core']) }}
-- Percentile grades of Instagram accounts: for every metric below, its percentile among the
-- accounts that have it and a grade from 1 (bottom fifth) to 5 (top fifth). Adding a graded
-- metric is one line here (and its two columns in the contract).
{% set graded_metrics = [
    'followers',
    'following',
    'posts_count',
    'engagement_rate',
    'avg_likes',
    'avg_comments',
    'avg_views',
    'median_likes',
    'median_comments',
    'posts_per_week',
    'follower_growth_7d',
    'follower_growth_30d',
    'follower_growth_7d_pct',
    'follower_growth_30d_pct',
    'comment_like_ratio',
    'video_share',
    'paid_partnership_share',
    'avg_hashtags_per_post',
    'follower_following_ratio',
] %}
with accounts as (
    select profile_id, profile_key, {{ graded_metrics | join(', ') }}
    from {{ ref('mart_instagram_account_metrics') }}
    where not is_deleted
)
{{ percentile_grades_by_key('accounts', 'profile_id', graded_metrics, buckets=5, carry=['profile_key']) }}
