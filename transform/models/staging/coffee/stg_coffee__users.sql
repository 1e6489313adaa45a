-- One user of a brand.
select
    id as user_id,
    brand_id,
    lower(email) as email,
    full_name,
    role,
    created_at,
    last_login_at,
    updated_at
from {{ source('coffee', 'users') }} final
