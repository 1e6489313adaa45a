{{ config(order_by='(brand_id, collection_id)', tags=['collections']) }}
-- One row per collection: how engaged its members' audiences are — the mean and median member
-- engagement rate, engagements per follower across the collection (Σ average engagements /
-- Σ audience), the engagements one post per member can expect, and what members actually
-- published and earned in the 30 days before as_of. For brand managers comparing lists.
with members as (
    select
        collection_id,
        any(brand_id) as brand_id,
        countIf(engagement_rate is not null) as members_measured,
        avg(engagement_rate) as avg_engagement_rate,
        quantileExact(0.5)(engagement_rate) as median_engagement_rate,
        sum(avg_engagements) as expected_engagements_per_round,
        {{ safe_divide('sumIf(avg_engagements, avg_engagements is not null)', 'sumIf(audience, avg_engagements is not null)') }} as engagements_per_follower,
        argMax(profile_key, coalesce(engagement_rate, -1)) as most_engaging_profile_key
    from {{ ref('int_collections__members') }}
    where not is_deleted
    group by collection_id
),
content as (
    select * from {{ ref('int_collections__member_content') }}
    where posted_at > {{ as_of(ref('int_collections__member_content'), 'last_scraped_at') }} - interval 30 day
),
recent as (
    select
        m.collection_id as collection_id,
        count() as posts_30d,
        uniqExact(m.profile_key) as members_posting_30d,
        sum(c.engagements) as engagements_30d
    from {{ ref('int_collections__members') }} as m
    inner join content as c on c.profile_key = m.profile_key
    group by m.collection_id
)
select
    toInt64(c.collection_id) as collection_id,
    toInt64(c.brand_id) as brand_id,
    toInt32(coalesce(m.members_measured, 0)) as members_measured,
    toNullable(toFloat64(m.avg_engagement_rate)) as avg_engagement_rate,
    toNullable(toFloat64(m.median_engagement_rate)) as median_engagement_rate,
    toNullable(toFloat64(m.engagements_per_follower)) as engagements_per_follower,
    toFloat64(coalesce(m.expected_engagements_per_round, 0)) as expected_engagements_per_round,
    toNullable(toString(if(m.members_measured > 0, m.most_engaging_profile_key, NULL))) as most_engaging_profile_key,
    toInt64(coalesce(r.posts_30d, 0)) as posts_30d,
    toInt32(coalesce(r.members_posting_30d, 0)) as members_posting_30d,
    toInt64(coalesce(r.engagements_30d, 0)) as engagements_30d,
    toNullable(toFloat64({{ safe_divide('r.engagements_30d', 'r.posts_30d') }})) as engagements_per_post_30d
from {{ ref('stg_coffee__collections') }} as c
left join members as m on m.collection_id = c.collection_id
left join recent as r on r.collection_id = c.collection_id
