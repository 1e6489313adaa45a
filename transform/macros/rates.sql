{#- Interactions per follower of one post: (likes + comments) / followers; hidden counts are 0. -#}
{% macro engagement_rate(likes, comments, audience) -%}
    {{ safe_divide('coalesce(' ~ likes ~ ', 0) + coalesce(' ~ comments ~ ', 0)', audience) }}
{%- endmacro %}

{#- Relative change from `before` to `after`, NULL when there is no `before` or it is 0. -#}
{% macro growth_pct(after, before) -%}
    {{ safe_divide('toFloat64(' ~ after ~ ') - toFloat64(' ~ before ~ ')', before) }}
{%- endmacro %}
