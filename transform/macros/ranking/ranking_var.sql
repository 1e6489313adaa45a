{#- A setting of the ranking marts: `var(name)` when the project or the command line sets it,
    else the default below (one place for every ranking threshold and window). -#}
{% macro ranking_var(name) -%}
    {%- set defaults = {
        'ranking_lookback_days': 90,
        'ranking_window_days': 30,
        'ranking_top_n': 50,
        'ranking_hashtag_top_n': 10,
        'ranking_weeks': 12,
        'trending_window_hours': 72,
        'baseline_posts': 12,
        'baseline_min_posts': 3,
        'viral_ratio_threshold': 5.0,
        'consistency_posts': 12,
    } -%}
    {%- if name not in defaults -%}
        {{ exceptions.raise_compiler_error("unknown ranking setting " ~ name) }}
    {%- endif -%}
    {{- return(var(name, defaults[name])) -}}
{%- endmacro %}
