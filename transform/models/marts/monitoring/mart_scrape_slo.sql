{{ config(order_by='(source, endpoint)', tags=['monitoring']) }}
-- Per-endpoint SLO over the last var slo_window_days days before as_of: success rate against
-- var slo_success_target, the error budget (failures the target allows; NotFound, a vanished
-- target, does not count), the share of it left and the 1 h / 24 h burn rates (1 = spending
-- exactly the budget). The operator's SLO board, and what pages someone when a budget runs out.
{% set target = var('slo_success_target') %}
with as_of as (
    select {{ beat_as_of() }} as as_of
),
requests as (
    select
        source,
        endpoint,
        {{ is_scraper_failure('is_success', 'error_class') }} as is_bad,
        started_at > (select as_of from as_of) - interval 1 hour as in_last_hour,
        started_at > (select as_of from as_of) - interval 24 hour as in_last_day
    from {{ ref('stg_beat__scrape_requests') }}
    where started_at > (select as_of from as_of) - interval {{ var('slo_window_days') }} day
      and started_at <= (select as_of from as_of)
),
counted as (
    select
        source,
        endpoint,
        count() as requests,
        countIf(is_bad) as bad_requests,
        countIf(in_last_hour) as requests_1h,
        countIf(in_last_hour and is_bad) as bad_requests_1h,
        countIf(in_last_day) as requests_24h,
        countIf(in_last_day and is_bad) as bad_requests_24h
    from requests
    group by source, endpoint
)
select
    toLowCardinality(toString(source)) as source,
    toLowCardinality(toString(endpoint)) as endpoint,
    toInt32({{ var('slo_window_days') }}) as window_days,
    toFloat64({{ target }}) as success_target,
    toInt64(requests) as requests,
    toInt64(bad_requests) as bad_requests,
    toNullable(toFloat64(1 - {{ safe_divide('bad_requests', 'requests') }})) as success_rate,
    toFloat64(requests * (1 - {{ target }})) as error_budget,
    toNullable(toFloat64(1 - {{ safe_divide('bad_requests', 'requests * (1 - ' ~ target ~ ')') }})) as error_budget_remaining,
    toNullable(toFloat64({{ safe_divide(safe_divide('bad_requests_1h', 'requests_1h'), 1 - target) }})) as burn_rate_1h,
    toNullable(toFloat64({{ safe_divide(safe_divide('bad_requests_24h', 'requests_24h'), 1 - target) }})) as burn_rate_24h,
    toLowCardinality(toString(multiIf(
        requests = 0, 'no_data',
        bad_requests > requests * (1 - {{ target }}), 'breached',
        bad_requests > requests * (1 - {{ target }}) * 0.75, 'at_risk',
        'met'))) as slo_status,
    (select as_of from as_of) as as_of
from counted
