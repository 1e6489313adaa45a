{{ config(order_by='(source, endpoint)', tags=['monitoring']) }}
-- Scrape volume per source and endpoint in the 24 hours before as_of against the 24 hours
-- before that (and the last hour against the same hour a day earlier): requests, successes and
-- their change. The operator reads it to see a drop in throughput (a stuck queue, dead workers)
-- that a success rate alone would hide.
with as_of as (
    select {{ beat_as_of() }} as as_of
),
requests as (
    select
        source,
        endpoint,
        is_success,
        started_at > (select as_of from as_of) - interval 24 hour as is_today,
        started_at > (select as_of from as_of) - interval 1 hour as is_last_hour,
        started_at <= (select as_of from as_of) - interval 24 hour
            and started_at > (select as_of from as_of) - interval 25 hour as is_last_hour_yesterday
    from {{ ref('stg_beat__scrape_requests') }}
    where started_at > (select as_of from as_of) - interval 48 hour
      and started_at <= (select as_of from as_of)
)
select
    toLowCardinality(toString(source)) as source,
    toLowCardinality(toString(endpoint)) as endpoint,
    toInt64(countIf(is_today)) as requests_24h,
    toInt64(countIf(not is_today)) as requests_previous_24h,
    toNullable(toFloat64({{ growth_pct('countIf(is_today)', 'countIf(not is_today)') }})) as requests_change_pct,
    toInt64(countIf(is_today and is_success)) as successes_24h,
    toInt64(countIf(not is_today and is_success)) as successes_previous_24h,
    toNullable(toFloat64({{ growth_pct('countIf(is_today and is_success)', 'countIf(not is_today and is_success)') }})) as successes_change_pct,
    toInt64(countIf(is_last_hour)) as requests_last_hour,
    toInt64(countIf(is_last_hour_yesterday)) as requests_same_hour_yesterday,
    toNullable(toFloat64({{ growth_pct('countIf(is_last_hour)', 'countIf(is_last_hour_yesterday)') }})) as last_hour_change_pct,
    (select as_of from as_of) as as_of
from requests
group by source, endpoint
