{{ config(order_by='(dimension, dimension_value, profile_key)', tags=['leaderboards']) }}
-- Multi-dimensional leaderboards: for every dimension below (a column or a combination of
-- columns of int_profiles__leaderboard_dimensions) and each of its values, the top profiles by
-- audience, by engagement rate and by 30-day growth. One row per (dimension, value, profile)
-- that makes any of the three top lists. Adding a dimension is one line.
{% set dimensions = [
    ['platform'],
    ['country'],
    ['category'],
    ['language'],
    ['audience_tier'],
    ['engagement_tier'],
    ['cadence_tier'],
    ['growth_trend'],
    ['platform', 'country'],
    ['platform', 'category'],
    ['platform', 'language'],
    ['platform', 'audience_tier'],
    ['platform', 'engagement_tier'],
    ['platform', 'cadence_tier'],
    ['platform', 'growth_trend'],
    ['country', 'category'],
    ['country', 'language'],
    ['country', 'audience_tier'],
    ['category', 'audience_tier'],
    ['category', 'language'],
    ['category', 'engagement_tier'],
    ['country', 'growth_trend'],
    ['platform', 'country', 'category'],
    ['platform', 'country', 'audience_tier'],
    ['platform', 'category', 'audience_tier'],
    ['platform', 'country', 'language'],
    ['platform', 'category', 'engagement_tier'],
    ['country', 'category', 'audience_tier'],
] %}
{% set size = var('leaderboard_size', 100) %}
with profiles as (
    select * from {{ ref('int_profiles__leaderboard_dimensions') }}
),
ranked as (
    {%- for dims in dimensions %}
    select
        '{{ dims | join("+") }}' as dimension,
        concat({{ dims | join(", '|', ") }}) as dimension_value,
        profile_key,
        handle,
        audience,
        engagement_rate,
        audience_growth_30d_pct,
        {%- for metric in ['audience', 'engagement_rate', 'audience_growth_30d_pct'] %}
        if({{ metric }} is null, null, rank() over (partition by {{ dims | join(', ') }}, isNull({{ metric }}) order by {{ metric }} desc)) as {{ metric }}_rank,
        {%- endfor %}
        count() over (partition by {{ dims | join(', ') }}) as profiles
    from profiles
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toNullable(toUInt64(audience)) as audience,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toNullable(toFloat64(audience_growth_30d_pct)) as growth_30d_pct,
    toNullable(toUInt64(audience_rank)) as audience_rank,
    toNullable(toUInt64(engagement_rate_rank)) as engagement_rank,
    toNullable(toUInt64(audience_growth_30d_pct_rank)) as growth_rank,
    toUInt64(profiles) as dimension_profiles
from ranked
where audience_rank <= {{ size }} or engagement_rate_rank <= {{ size }} or audience_growth_30d_pct_rank <= {{ size }}
