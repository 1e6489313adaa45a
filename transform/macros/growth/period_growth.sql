{#- Growth per profile and period (`period`: a ClickHouse function of the scrape time, toMonday,
    toStartOfMonth...): the audience and post count at the period's last scrape
    (period_audience), their change from the profile's previous period with a scrape, and the
    period's scrape count; the period's first day is the column `period_column`. The shape of
    every growth-over-period mart. -#}
{% macro period_growth(period, period_column) -%}
with periods as (
    {{ period_audience(period) }}
),
with_previous as (
    select
        *,
        lagInFrame(toNullable(audience_end)) over w as audience_previous,
        lagInFrame(toNullable(posts_end)) over w as posts_previous
    from periods
    window w as (partition by profile_key order by period_start rows between unbounded preceding and current row)
)
select
    toLowCardinality(toString(platform)) as platform,
    toString(profile_key) as profile_key,
    toDate(period_start) as {{ period_column }},
    toNullable(toInt64(audience_end)) as audience_end,
    toNullable(toInt64(audience_end) - toInt64(audience_previous)) as audience_change,
    toNullable(toFloat64({{ growth_pct('audience_end', 'audience_previous') }})) as audience_change_pct,
    toInt64(posts_end) as posts_end,
    toNullable(toInt64(posts_end) - toInt64(posts_previous)) as posts_change,
    toInt32(snapshots) as snapshots
from with_previous
{%- endmacro %}
