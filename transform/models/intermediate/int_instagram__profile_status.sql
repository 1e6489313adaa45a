{{ config(tags=['core']) }}
-- One row per Instagram profile Beat has asked for: its latest request's outcome. A deleted
-- account stops producing snapshots; its requests fail with NotFound, and the latest request is
-- how we tell. The error class is latest(), not last_known(): a success (NULL error class)
-- after a NotFound is a restored account, which must not stay "deleted".
select
    profile_id,
    max(started_at) as last_requested_at,
    maxIf(started_at, is_success) as last_success_at,
    {{ latest('error_class', 'started_at') }} as last_error_class,
    -- Bool, not the LowCardinality(UInt8) a comparison with a LowCardinality column gives, which
    -- ClickHouse refuses as a table column (a unit test materialises the model's columns)
    cast(coalesce(last_error_class = 'NotFound', false), 'Bool') as is_deleted
from {{ ref('stg_beat__instagram_profile_requests') }}
group by profile_id
