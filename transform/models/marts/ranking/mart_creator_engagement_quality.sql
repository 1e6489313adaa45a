{{ config(order_by='(platform, profile_key)', tags=['profile-ranking']) }}
-- Engagement quality per creator over their last N posts: the comments-to-likes ratio (real
-- audiences talk; bought likes do not) and the engagement rate, each against the median of the
-- creator's platform and category. Brand managers read it to vet a creator's audience.
with creators as (
    select
        sc.platform as platform,
        sc.profile_key as profile_key,
        sc.handle as handle,
        sc.category as category,
        st.posts_measured as posts_measured,
        st.likes_measured as likes_measured,
        st.comments_measured as comments_measured,
        st.comment_like_ratio as comment_like_ratio,
        sc.engagement_rate as engagement_rate,
        st.as_of as as_of
    from {{ ref('int_ranking__creator_stats') }} as st
    inner join {{ ref('int_ranking__creator_scores') }} as sc on sc.profile_key = st.profile_key
),
with_medians as (
    select
        *,
        quantileExact(0.5)(comment_like_ratio) over (partition by platform, category) as category_median_comment_like_ratio,
        quantileExact(0.5)(engagement_rate) over (partition by platform, category) as category_median_engagement_rate,
        count() over (partition by platform, category) as category_creators
    from creators
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(category)) as category,
    toInt32(posts_measured) as posts_measured,
    toNullable(toInt64(likes_measured)) as likes_measured,
    toNullable(toInt64(comments_measured)) as comments_measured,
    toNullable(toFloat64(comment_like_ratio)) as comment_like_ratio,
    toNullable(toFloat64(category_median_comment_like_ratio)) as category_median_comment_like_ratio,
    toNullable(toFloat64({{ safe_divide('comment_like_ratio', 'category_median_comment_like_ratio') }})) as comment_like_vs_category,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toNullable(toFloat64(category_median_engagement_rate)) as category_median_engagement_rate,
    toNullable(toFloat64({{ safe_divide('engagement_rate', 'category_median_engagement_rate') }})) as engagement_vs_category,
    toInt32(category_creators) as category_creators,
    toLowCardinality(toString(multiIf(
        comment_like_vs_category is null, 'unknown',
        comment_like_vs_category < 0.5, 'low',
        comment_like_vs_category > 2, 'high',
        'typical'))) as comment_quality,
    as_of
from with_medians
