{{ config(tags=['leaderboards']) }}
-- Every profile that can appear on a leaderboard, with each dimension a leaderboard can slice by
-- as text ('unknown' when the source does not say): platform, country, category, language,
-- audience tier, and derived engagement, cadence and growth tiers.
select
    profile_key,
    handle,
    audience,
    engagement_rate,
    audience_growth_30d_pct,
    toString(platform) as platform,
    coalesce(toString(country), 'unknown') as country,
    coalesce(toString(category), 'unknown') as category,
    coalesce(toString(language), 'unknown') as language,
    toString(audience_tier) as audience_tier,
    multiIf(engagement_rate is null, 'unknown', engagement_rate < 0.01, 'low', engagement_rate < 0.05, 'medium', 'high') as engagement_tier,
    multiIf(posts_per_week = 0, 'inactive', posts_per_week < 1, 'occasional', posts_per_week < 4, 'regular', 'frequent') as cadence_tier,
    multiIf(audience_growth_30d_pct is null, 'unknown', audience_growth_30d_pct > 0.01, 'growing', audience_growth_30d_pct < -0.01, 'declining', 'stable') as growth_trend
from {{ ref('mart_profile_metrics') }}
where not is_deleted
