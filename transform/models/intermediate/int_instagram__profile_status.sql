{{ config(tags=['core']) }}
-- One row per Instagram profile Beat has asked for: its latest request's outcome. A deleted
-- account stops producing snapshots; its requests fail with NotFound, and the latest request is
-- how we tell (argMax on the request time). The error class goes through a tuple: argMax skips
-- NULL arguments, so a success (NULL error class) after a NotFound would be passed over and the
-- restored account would stay "deleted".
select
    profile_id,
    max(started_at) as last_requested_at,
    maxIf(started_at, is_success) as last_success_at,
    argMax(tuple(error_class), started_at).1 as last_error_class,
    coalesce(last_error_class = 'NotFound', false) as is_deleted
from {{ ref('stg_beat__instagram_profile_requests') }}
group by profile_id
