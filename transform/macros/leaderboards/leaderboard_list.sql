{#- A served top list: the rows of int_leaderboards__ranked for `dimensions` whose `rank_column`
    is within the leaderboard size (var leaderboard_size), in the one shape every top-list mart
    shares (so one YAML column list describes them all). -#}
{% macro leaderboard_list(dimensions, rank_column='audience_rank') -%}
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toInt32(assumeNotNull({{ rank_column }})) as list_rank,
    toString(profile_key) as profile_key,
    toString(handle) as handle,
    toLowCardinality(toString(platform)) as platform,
    toLowCardinality(toString(country)) as country,
    toLowCardinality(toString(category)) as category,
    toLowCardinality(toString(language)) as language,
    toLowCardinality(toString(audience_tier)) as audience_tier,
    {{ leaderboard_metric_columns() }},
    toNullable(toInt64(audience_rank_change_7d)) as audience_rank_change_7d,
    toInt32(dimension_profiles) as dimension_profiles
from {{ ref('int_leaderboards__ranked') }}
where dimension in ({% for dims in dimensions %}'{{ dims | join("+") }}'{% if not loop.last %}, {% endif %}{% endfor %})
  and {{ rank_column }} <= {{ var('leaderboard_size') }}
{%- endmacro %}
