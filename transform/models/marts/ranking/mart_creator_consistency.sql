{{ config(order_by='(platform, profile_key)', tags=['profile-ranking']) }}
-- Consistency per creator over their last N posts (var consistency_posts): how regular the
-- posting cadence is and how stable engagement is from post to post, scored 0..1 and ranked
-- within the platform. Campaign managers read it to prefer creators who deliver predictably.
with stats as (
    select
        sc.platform as platform,
        sc.profile_key as profile_key,
        sc.handle as handle,
        sc.category as category,
        st.posts_measured as posts_measured,
        st.mean_gap_hours as mean_gap_hours,
        st.gap_cv as gap_cv,
        st.mean_engagement as mean_engagement,
        st.engagement_cv as engagement_cv,
        st.consistency_score as consistency_score,
        st.as_of as as_of
    from {{ ref('int_ranking__creator_stats') }} as st
    inner join {{ ref('int_ranking__creator_scores') }} as sc on sc.profile_key = st.profile_key
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(category)) as category,
    toInt32(posts_measured) as posts_measured,
    toNullable(toFloat64(mean_gap_hours)) as mean_gap_hours,
    toNullable(toFloat64(gap_cv)) as gap_cv,
    toNullable(toFloat64(mean_engagement)) as mean_engagement,
    toNullable(toFloat64(engagement_cv)) as engagement_cv,
    toNullable(toFloat64(consistency_score)) as consistency_score,
    {{ rank_within('consistency_score', ['platform']) }} as consistency_rank,
    toLowCardinality(toString(multiIf(consistency_score is null, 'unknown', consistency_score >= 0.75, 'high',
        consistency_score >= 0.6, 'medium', 'low'))) as consistency_tier,
    as_of
from stats
