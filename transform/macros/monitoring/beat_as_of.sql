{#- The monitoring marts' "now": the newest request in Beat's log (its lines ship within
    seconds), as a scalar subquery. Every monitoring window counts back from it. -#}
{% macro beat_as_of() -%}
    {{ as_of(ref('stg_beat__scrape_requests'), 'started_at') }}
{%- endmacro %}
