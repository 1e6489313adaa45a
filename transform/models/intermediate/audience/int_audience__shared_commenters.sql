{{ config(materialized='table', order_by='(tracked_profile_id_a, tracked_profile_id_b)', tags=['collections']) }}
-- One row per pair of tracked Instagram profiles (tracked_profile_id_a < tracked_profile_id_b)
-- that share at least one commenter, with how many: the evidence of audience overlap between
-- two creators. Built per commenter (the sorted profiles it commented on give its k(k-1)/2
-- pairs), so there is no self-join of the comments; integer keys keep the joins cheap.
with commenter_profiles as (
    select c.commenter_username as commenter_username, arraySort(groupUniqArray(t.tracked_profile_id)) as profiles
    from {{ ref('stg_instagram__comments') }} as c
    inner join {{ ref('stg_coffee__tracked_profiles') }} as t
        on t.platform = 'instagram' and t.platform_id = toString(c.profile_id)
    group by c.commenter_username
    having length(profiles) >= 2
)
select pair.1 as tracked_profile_id_a, pair.2 as tracked_profile_id_b, toUInt64(count()) as shared_commenters
from commenter_profiles
array join arrayFlatten(arrayMap(i -> arrayMap(j -> (profiles[i], profiles[j]), range(i + 1, length(profiles) + 1)), range(1, length(profiles)))) as pair
group by tracked_profile_id_a, tracked_profile_id_b
