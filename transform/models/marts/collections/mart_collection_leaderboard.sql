{{ config(order_by='(collection_id, overall_rank)', tags=['collections']) }}
-- Live members ranked inside their collection by audience, engagement rate, 30-day growth and
-- estimated media value per dollar, and overall (the mean of the four percentiles, missing ones
-- left out): the leaderboard tab of a collection, where a campaign manager picks whom to brief
-- first. Engagement is per follower on Instagram and per view on YouTube (as everywhere).
{% set metrics = {
    'audience_rank': 'audience',
    'engagement_rank': 'engagement_rate',
    'growth_rank': 'audience_growth_30d_pct',
    'value_rank': 'media_value_per_cost',
} %}
with members as (
    select
        *,
        {{ safe_divide('est_media_value_per_post_usd', 'est_cost_per_post_usd') }} as media_value_per_cost
    from {{ ref('int_collections__members') }}
    where not is_deleted
),
ranked as (
    select
        collection_id,
        brand_id,
        collection_member_id,
        profile_key,
        platform,
        audience,
        engagement_rate,
        audience_growth_30d_pct,
        media_value_per_cost,
        {%- for name, metric in metrics.items() %}
        if({{ metric }} is null, null, rank() over (partition by collection_id, isNull({{ metric }}) order by {{ metric }} desc)) as {{ name }},
        if({{ metric }} is null, null, percent_rank() over (partition by collection_id, isNull({{ metric }}) order by {{ metric }})) as {{ name }}_pct,
        {%- endfor %}
        count() over (partition by collection_id) as ranked_members
    from members
),
scored as (
    select
        *,
        arrayAvg(arrayMap(x -> assumeNotNull(x), arrayFilter(x -> x is not null, [{% for name in metrics %}{{ name }}_pct{% if not loop.last %}, {% endif %}{% endfor %}]))) as overall_score,
        length(arrayFilter(x -> x is not null, [{% for name in metrics %}{{ name }}_pct{% if not loop.last %}, {% endif %}{% endfor %}])) as metrics_known
    from ranked
)
select
    toInt64(collection_member_id) as collection_member_id,
    toInt64(collection_id) as collection_id,
    toInt64(brand_id) as brand_id,
    toString(profile_key) as profile_key,
    toLowCardinality(toString(platform)) as platform,
    toNullable(toInt64(audience)) as audience,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toNullable(toFloat64(audience_growth_30d_pct)) as audience_growth_30d_pct,
    toNullable(toFloat64(media_value_per_cost)) as media_value_per_cost,
    {%- for name in metrics %}
    toNullable(toInt32({{ name }})) as {{ name }},
    {%- endfor %}
    toNullable(toFloat64(if(metrics_known = 0, NULL, overall_score))) as overall_score,
    toInt32(row_number() over (partition by collection_id order by if(metrics_known = 0, -1, overall_score) desc, audience desc, profile_key)) as overall_rank,
    toInt32(ranked_members) as ranked_members
from scored
