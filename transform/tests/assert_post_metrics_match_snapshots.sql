-- The incremental post facts, read with FINAL, equal a full recomputation from the snapshots:
-- one current row per post, with the likes, comments and views of its newest scrape (NULL when
-- hidden or turned off by then), whatever order rows arrived in. The oracle is a different
-- computation from the model's aggregate: sort each post's snapshots newest first and keep the
-- first row.
-- (Posts whose snapshots retention has dropped may stay in the facts; they are not compared.)
with incremental as (
    select post_id, likes, comments, views, last_scraped_at
    from {{ ref('int_instagram__post_metrics') }} final
),
recomputed as (
    select post_id, likes, comments, views, scraped_at as last_scraped_at
    from {{ ref('stg_instagram__post_snapshots') }}
    order by post_id, scraped_at desc
    limit 1 by post_id
)
select post_id
from incremental
right join recomputed using post_id
where incremental.post_id is null
   or incremental.likes is distinct from recomputed.likes
   or incremental.comments is distinct from recomputed.comments
   or incremental.views is distinct from recomputed.views
   or incremental.last_scraped_at != recomputed.last_scraped_at
union all
select post_id
from incremental
group by post_id
having count() > 1
