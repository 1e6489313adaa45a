{{ config(order_by='(platform, profile_key)', tags=['profile-ranking']) }}
-- Per-profile ranks within its platform (audience, engagement, 30-day growth) and within its
-- platform and category or country, with the audience rank as a percentile. Deleted profiles
-- are not ranked.
{% set ranks = {
    'audience_rank': ('platform', 'audience'),
    'engagement_rank': ('platform', 'engagement_rate'),
    'growth_rank': ('platform', 'audience_growth_30d_pct'),
    'category_audience_rank': ('platform, category', 'audience'),
    'country_audience_rank': ('platform, country', 'audience'),
} %}
with profiles as (
    select * from {{ ref('mart_profile_metrics') }} where not is_deleted
)
select
    platform,
    profile_key,
    category,
    country,
    audience,
    engagement_rate,
    audience_growth_30d_pct,
    {%- for name, (partition, metric) in ranks.items() %}
    if({{ metric }} is null, null, toInt32(rank() over (partition by {{ partition }}, isNull({{ metric }}) order by {{ metric }} desc))) as {{ name }},
    {%- endfor %}
    toInt32(count() over (partition by platform)) as platform_profiles,
    if(audience is null, null, 1 - percent_rank() over (partition by platform, isNull(audience) order by audience desc)) as audience_percentile
from profiles
