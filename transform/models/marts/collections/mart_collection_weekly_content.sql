{{ config(order_by='(collection_id, week_start)', tags=['collections']) }}
-- One row per collection and week (Monday start, the 13 weeks before as_of) in which members
-- published: posts, paid partnerships, members posting, engagements and views. The content
-- chart of the collection page: is the list active, and did a campaign move it?
with members as (
    select collection_id, brand_id, profile_key from {{ ref('int_collections__members') }}
),
content as (
    select * from {{ ref('int_collections__member_content') }}
    where posted_at > {{ as_of(ref('int_collections__member_content'), 'last_scraped_at') }} - interval 91 day
)
select
    toInt64(m.collection_id) as collection_id,
    toInt64(any(m.brand_id)) as brand_id,
    toStartOfWeek(p.posted_at, 1) as week_start,
    toInt64(count()) as posts,
    toInt64(countIf(p.is_paid_partnership)) as paid_partnership_posts,
    toInt32(uniqExact(m.profile_key)) as members_posting,
    toInt64(sum(p.engagements)) as engagements,
    toInt64(sum(coalesce(p.views, 0))) as views,
    toNullable(toFloat64({{ safe_divide('sum(p.engagements)', 'count()') }})) as engagements_per_post
from members as m
inner join content as p on p.profile_key = m.profile_key
group by m.collection_id, week_start
