-- One brand (Coffee's replica; ReplacingMergeTree(updated_at) by id, read with FINAL).
select
    id as brand_id,
    name as brand_name,
    slug,
    industry,
    country,
    plan,
    lower(shopify_domain) as shopify_domain,
    created_at,
    updated_at
from {{ source('coffee', 'brands') }} final
