-- One profile in one collection, with its discount code when the collection runs a campaign.
select
    id as collection_member_id,
    collection_id,
    tracked_profile_id,
    upper(discount_code) as discount_code,
    added_at,
    updated_at
from {{ source('coffee', 'collection_members') }} final
