{{ config(order_by='(collection_id, collection_member_id)', tags=['collections']) }}
-- One row per collection member with the profile's latest metrics, growth and the estimated
-- price and media value of one sponsored post: the member table of the app's collection page,
-- read by brand and campaign managers choosing whom to keep or brief.
select
    toInt64(collection_member_id) as collection_member_id,
    toInt64(collection_id) as collection_id,
    toInt64(brand_id) as brand_id,
    toInt64(tracked_profile_id) as tracked_profile_id,
    toString(profile_key) as profile_key,
    toLowCardinality(toString(platform)) as platform,
    toString(handle) as handle,
    toNullable(toString(discount_code)) as discount_code,
    added_at as added_at,
    toNullable(toInt64(audience)) as audience,
    toNullable(toInt64(audience_growth_7d)) as audience_growth_7d,
    toNullable(toInt64(audience_growth_30d)) as audience_growth_30d,
    toNullable(toFloat64(audience_growth_30d_pct)) as audience_growth_30d_pct,
    toNullable(toFloat64(engagement_rate)) as engagement_rate,
    toNullable(toFloat64(avg_likes)) as avg_likes,
    toNullable(toFloat64(avg_comments)) as avg_comments,
    toNullable(toFloat64(avg_views)) as avg_views,
    toNullable(toFloat64(posts_per_week)) as posts_per_week,
    toLowCardinality(toNullable(toString(category))) as category,
    toLowCardinality(toNullable(toString(country))) as country,
    toBool(is_deleted) as is_deleted,
    toNullable(toFloat64(est_cost_per_post_usd)) as est_cost_per_post_usd,
    toNullable(toFloat64(est_media_value_per_post_usd)) as est_media_value_per_post_usd,
    last_scraped_at as last_scraped_at,
    as_of as as_of
from {{ ref('int_collections__members') }}
