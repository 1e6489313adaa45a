{#- The audience tier of an audience, as mart_profile_metrics names it: nano (<10k), micro
    (<100k), macro (<1M), mega, or unknown (NULL audience). -#}
{% macro audience_tier_of(audience) -%}
    multiIf({{ audience }} is null, 'unknown', {{ audience }} < 10000, 'nano', {{ audience }} < 100000, 'micro', {{ audience }} < 1000000, 'macro', 'mega')
{%- endmacro %}

{#- The tiers in order, for comparing two tiers (up/down): 0 unknown, 1 nano .. 4 mega. -#}
{% macro audience_tier_level(tier) -%}
    indexOf(['nano', 'micro', 'macro', 'mega'], {{ tier }})
{%- endmacro %}
