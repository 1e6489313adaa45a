{#- The columns every post-ranking mart serves about a post, cast to their contract types, from
    a row of int_ranking__posts (or a subquery over it) aliased `alias`. -#}
{% macro post_ranking_columns(alias) -%}
    toString({{ alias }}.post_key) as post_key,
    toLowCardinality(toString({{ alias }}.platform)) as platform,
    toString({{ alias }}.profile_key) as profile_key,
    toString({{ alias }}.handle) as handle,
    toLowCardinality(toString({{ alias }}.category)) as category,
    toLowCardinality(toString({{ alias }}.country)) as country,
    {{ alias }}.posted_at as posted_at,
    toLowCardinality(toString({{ alias }}.media_type)) as media_type,
    toNullable(toInt64({{ alias }}.likes)) as likes,
    toNullable(toInt64({{ alias }}.comments)) as comments,
    toNullable(toInt64({{ alias }}.views)) as views,
    toInt64({{ alias }}.engagement) as engagement,
    toNullable(toFloat64({{ alias }}.engagement_rate)) as engagement_rate,
    toFloat64({{ alias }}.engagement_per_hour) as engagement_per_hour
{%- endmacro %}
