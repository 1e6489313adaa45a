-- One collection: a brand's list of influencers.
select
    id as collection_id,
    brand_id,
    created_by as created_by_user_id,
    name as collection_name,
    description,
    created_at,
    archived_at,
    archived_at is not null as is_archived,
    updated_at
from {{ source('coffee', 'collections') }} final
