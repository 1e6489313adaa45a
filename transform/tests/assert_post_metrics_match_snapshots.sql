-- The incremental post facts, read with FINAL, equal a full recomputation from the snapshots:
-- one current row per post, with the likes of its newest scrape, whatever order rows arrived in.
-- (Posts whose snapshots retention has dropped may stay in the facts; they are not compared.)
with incremental as (
    select post_id, likes, last_scraped_at
    from {{ ref('int_instagram__post_metrics') }} final
),
recomputed as (
    select post_id, argMax(likes, scraped_at) as likes, max(scraped_at) as last_scraped_at
    from {{ ref('stg_instagram__post_snapshots') }}
    group by post_id
)
select post_id
from incremental
right join recomputed using post_id
where incremental.post_id is null
   or incremental.likes is distinct from recomputed.likes
   or incremental.last_scraped_at != recomputed.last_scraped_at
union all
select post_id
from incremental
group by post_id
having count() > 1
