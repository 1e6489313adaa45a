{{ config(materialized='table', order_by='(collection_id, collection_member_id)', tags=['collections']) }}
-- One row per collection member (collection x tracked profile) with the profile's latest metrics
-- from mart_profile_metrics, its audience 7 and 30 days before as_of, and the estimated price
-- and media value of one sponsored post (macros estimated_post_cost / estimated_media_value).
-- Every collections and commerce mart reads its members from here.
with profiles as (
    select * from {{ ref('mart_profile_metrics') }}
)
select
    m.collection_member_id as collection_member_id,
    m.collection_id as collection_id,
    c.brand_id as brand_id,
    c.is_archived as is_archived,
    m.tracked_profile_id as tracked_profile_id,
    t.profile_key as profile_key,
    t.platform as platform,
    coalesce(p.handle, t.username) as handle,
    -- One creator under the same handle on both platforms counts once (normalize_handle).
    {{ normalize_handle('t.username') }} as creator_key,
    m.discount_code as discount_code,
    m.added_at as added_at,
    p.audience as audience,
    toNullable(toInt64(p.audience) - toInt64(p.audience_growth_7d)) as audience_7d_ago,
    toNullable(toInt64(p.audience) - toInt64(p.audience_growth_30d)) as audience_30d_ago,
    p.audience_growth_7d as audience_growth_7d,
    p.audience_growth_30d as audience_growth_30d,
    p.audience_growth_30d_pct as audience_growth_30d_pct,
    p.engagement_rate as engagement_rate,
    p.avg_likes as avg_likes,
    p.avg_comments as avg_comments,
    p.avg_views as avg_views,
    if(p.avg_likes is null and p.avg_comments is null, NULL, coalesce(p.avg_likes, 0) + coalesce(p.avg_comments, 0)) as avg_engagements,
    p.posts_per_week as posts_per_week,
    p.category as category,
    p.country as country,
    p.language as language,
    coalesce(p.is_deleted, false) as is_deleted,
    p.last_scraped_at as last_scraped_at,
    {{ estimated_post_cost('p.audience', 'coalesce(p.avg_likes, 0) + coalesce(p.avg_comments, 0)') }} as est_cost_per_post_usd,
    {{ estimated_media_value('p.audience', 'coalesce(p.avg_likes, 0) + coalesce(p.avg_comments, 0)', 'p.avg_views') }} as est_media_value_per_post_usd,
    {{ as_of(ref('mart_profile_metrics'), 'last_scraped_at') }} as as_of
from {{ ref('stg_coffee__collection_members') }} as m
inner join {{ ref('stg_coffee__collections') }} as c on c.collection_id = m.collection_id
inner join {{ ref('stg_coffee__tracked_profiles') }} as t on t.tracked_profile_id = m.tracked_profile_id
left join profiles as p on p.profile_key = t.profile_key
