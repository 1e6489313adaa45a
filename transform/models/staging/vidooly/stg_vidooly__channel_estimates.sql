-- One channel, its newest weekly estimate: latest() on estimated_at (the version). The row is one
-- week's estimate, dated estimated_at: a field Vidooly left NULL that week is unknown, and is not
-- filled in from an older week (last_known would mix weeks under the newest date).
select
    channel_id,
    max(version) as estimated_at,
    {{ latest('category', 'version') }} as source_category,
    {{ latest('estimated_monthly_views', 'version') }} as estimated_monthly_views,
    {{ latest('estimated_monthly_earnings_low', 'version') }} as estimated_monthly_earnings_low,
    {{ latest('estimated_monthly_earnings_high', 'version') }} as estimated_monthly_earnings_high,
    {{ latest('audience_countries', 'version') }} as audience_countries,
    max(_ingested_at) as ingested_at
from (select *, estimated_at as version from {{ source('vidooly', 'channel_estimates') }})
group by channel_id
