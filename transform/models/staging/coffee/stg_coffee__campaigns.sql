-- One campaign of a brand, on a collection (drafts may have none).
select
    id as campaign_id,
    brand_id,
    collection_id,
    name as campaign_name,
    status,
    discount_pct,
    budget,
    currency,
    starts_on,
    ends_on,
    created_at,
    updated_at
from {{ source('coffee', 'campaigns') }} final
