{#- A profile's metrics and its three ranks of leaderboard_ranks, typed as every served
    leaderboard serves them (their contract types, in one place): audience, engagement rate,
    30-day growth, and the audience, engagement and growth ranks. -#}
{% macro leaderboard_metric_columns() -%}
    toNullable(toInt64(audience)) as audience,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toNullable(toFloat64(growth_30d_pct)) as growth_30d_pct,
    toNullable(toInt32(audience_rank)) as audience_rank,
    toNullable(toInt32(engagement_rank)) as engagement_rank,
    toNullable(toInt32(growth_rank)) as growth_rank
{%- endmacro %}
