{#- The audience-weighted mix of a group of creators: Σ(audience × share) / Σ(audience) over the
    creators that have a known mix (`group_audience`: their summed audience, computed beside it).
    Used for the geography of a collection or of a category. -#}
{% macro weighted_share(share, audience, group_audience) -%}
    {{ safe_divide('sum(toFloat64(' ~ share ~ ') * toFloat64(' ~ audience ~ '))', group_audience) }}
{%- endmacro %}
