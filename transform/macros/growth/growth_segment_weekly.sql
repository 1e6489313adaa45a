{#- Week-over-week growth of one segment of profiles (category, country, platform, audience
    tier...): per segment value and ISO week, from int_growth__profile_weeks. `segment` is a
    column of that model, served as `output` (NULL becomes 'unknown'). -#}
{% macro growth_segment_weekly(segment, output=none) -%}
with weekly as (
    select
        coalesce({{ segment }}, 'unknown') as segment_value,
        week_start as week,
        any(iso_year) as year_of_week,
        any(iso_week) as week_of_year,
        count() as n_profiles,
        countIf(audience_change is not null) as n_with_change,
        sum(coalesce(audience_end, 0)) as end_total,
        sum(coalesce(audience_change, 0)) as change_total,
        -- the same profiles' audience at their previous week: the base of the relative growth
        sumIf(toInt64(audience_end) - audience_change, audience_change is not null and audience_end is not null) as previous_total,
        sumIf(audience_change, audience_change is not null and audience_end is not null) as compared_change_total,
        quantileExactIf(0.5)(audience_change_pct, audience_change_pct is not null) as median_change_pct,
        countIf(audience_change > 0) as n_growing,
        countIf(audience_change < 0) as n_declining,
        sum(posts_published) as n_posts,
        avgIf(engagement_rate, engagement_rate is not null) as mean_engagement
    from {{ ref('int_growth__profile_weeks') }}
    group by segment_value, week
)
select
    toLowCardinality(toString(segment_value)) as {{ output or segment }},
    toDate(week) as week_start,
    toUInt16(year_of_week) as iso_year,
    toUInt8(week_of_year) as iso_week,
    toInt32(n_profiles) as profiles,
    toInt32(n_with_change) as profiles_with_change,
    toInt64(end_total) as audience_end_total,
    toInt64(change_total) as audience_change_total,
    toNullable(toFloat64({{ safe_divide('compared_change_total', 'previous_total') }})) as audience_change_pct,
    toNullable(toFloat64(if(n_with_change = 0, null, median_change_pct))) as median_audience_change_pct,
    toInt32(n_growing) as profiles_growing,
    toInt32(n_declining) as profiles_declining,
    toInt64(n_posts) as posts_published,
    toNullable(toFloat64(mean_engagement)) as avg_engagement_rate
from weekly
{%- endmacro %}
