{#- Estimated price and media value of one sponsored post of a creator, in USD.

    The constants are dbt vars (override with `--vars` or in dbt_project.yml; the defaults here
    are the documented values):
      collection_cost_cpm_usd  (default 6.0)   price per 1,000 followers/subscribers
      collection_cost_cpe_usd  (default 0.08)  price per expected engagement (likes + comments)
      media_value_cpm_usd      (default 9.0)   what the same impressions cost as paid media
      media_value_cpe_usd      (default 0.12)  what an engagement is worth as paid media
      organic_reach_rate       (default 0.25)  impressions per follower when views are unknown

    Cost: creators are priced by reach or by engagement, whichever is higher (the CPM/CPE
    convention of influencer rate cards). Media value: the expected impressions (average views,
    else audience x organic reach rate) at the paid CPM plus the expected engagements at the paid
    CPE. NULL audience, NULL result. -#}
{% macro estimated_post_cost(audience, engagements) -%}
    if({{ audience }} is null, NULL, greatest(
        toFloat64({{ audience }}) / 1000 * {{ var('collection_cost_cpm_usd') }},
        toFloat64(coalesce({{ engagements }}, 0)) * {{ var('collection_cost_cpe_usd') }}))
{%- endmacro %}

{% macro estimated_media_value(audience, engagements, views) -%}
    if({{ audience }} is null, NULL,
        toFloat64(coalesce({{ views }}, toFloat64({{ audience }}) * {{ var('organic_reach_rate') }})) / 1000 * {{ var('media_value_cpm_usd') }}
        + toFloat64(coalesce({{ engagements }}, 0)) * {{ var('media_value_cpe_usd') }})
{%- endmacro %}
