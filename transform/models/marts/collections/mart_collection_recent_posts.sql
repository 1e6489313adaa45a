{{ config(order_by='(collection_id, posted_at, post_key)', tags=['collections']) }}
-- The posts and videos members of each collection published in the last
-- var collection_content_days (14) days before as_of, with their latest likes, comments, views,
-- engagements per follower and rank inside the collection: the content feed of the app's
-- collection page, where campaign managers check what creators posted (paid partnerships
-- flagged).
with members as (
    select collection_id, brand_id, collection_member_id, profile_key, audience
    from {{ ref('int_collections__members') }}
),
recent as (
    select * from {{ ref('int_collections__member_content') }}
    where posted_at > {{ as_of(ref('int_collections__member_content'), 'last_scraped_at') }} - interval {{ var('collection_content_days') }} day
)
select
    toInt64(m.collection_id) as collection_id,
    toInt64(m.brand_id) as brand_id,
    toString(p.post_key) as post_key,
    toInt64(m.collection_member_id) as collection_member_id,
    toString(m.profile_key) as profile_key,
    toLowCardinality(toString(p.platform)) as platform,
    p.posted_at as posted_at,
    toLowCardinality(toString(p.media_type)) as media_type,
    toBool(p.is_paid_partnership) as is_paid_partnership,
    toNullable(toInt64(p.likes)) as likes,
    toNullable(toInt64(p.comments)) as comments,
    toNullable(toInt64(p.views)) as views,
    toInt64(p.engagements) as engagements,
    toNullable(toFloat64({{ safe_divide('p.engagements', 'm.audience') }})) as engagements_per_follower,
    toInt32(row_number() over (partition by m.collection_id order by p.engagements desc, p.post_key)) as engagement_rank
from members as m
inner join recent as p on p.profile_key = m.profile_key
