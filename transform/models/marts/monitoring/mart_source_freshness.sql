{{ config(order_by='(source_name, table_name)', tags=['monitoring']) }}
-- Freshness of every raw source table: its newest row (the source's loaded_at_field) against
-- as_of, the newest delivery (_ingested_at) of any source, with the warn/error thresholds its YAML
-- declares (read from the graph: one definition for `dbt source freshness` and this mart). The
-- operator's "which feed stopped" panel; Coffee's updated_at is an app clock and never sets as_of.
{% set tables = [
    ('instagram', 'account_snapshots'),
    ('instagram', 'posts'),
    ('instagram', 'post_snapshots'),
    ('instagram', 'comments'),
    ('youtube', 'channels'),
    ('youtube', 'channel_snapshots'),
    ('youtube', 'videos'),
    ('youtube', 'video_snapshots'),
    ('beat', 'scrape_requests'),
    ('shopify', 'orders'),
    ('shopify', 'order_line_items'),
    ('vidooly', 'channel_estimates'),
    ('coffee', 'brands'),
    ('coffee', 'users'),
    ('coffee', 'tracked_profiles'),
    ('coffee', 'collections'),
    ('coffee', 'collection_members'),
    ('coffee', 'campaigns'),
] %}
with newest as (
    {%- for source_name, table_name in tables %}
    {%- set declared = declared_freshness(source_name, table_name) %}
    {%- set loaded_at_field = declared['loaded_at_field'] %}
    select
        '{{ source_name }}' as source_name,
        '{{ table_name }}' as table_name,
        '{{ loaded_at_field }}' as loaded_at_field,
        max(toDateTime64({{ loaded_at_field }}, 3, 'UTC')) as newest_loaded_at,
        toNullable(toInt32({{ declared['warn_after'] if declared['warn_after'] is not none else 'null' }})) as warn_after_minutes,
        toNullable(toInt32({{ declared['error_after'] if declared['error_after'] is not none else 'null' }})) as error_after_minutes
    from {{ source(source_name, table_name) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),
with_as_of as (
    select *, maxIf(newest_loaded_at, loaded_at_field = '_ingested_at') over () as as_of
    from newest
)
select
    toLowCardinality(toString(source_name)) as source_name,
    toString(table_name) as table_name,
    toString(loaded_at_field) as loaded_at_field,
    toNullable(newest_loaded_at) as newest_loaded_at,
    -- a row newer than as_of (an application clock ahead of the deliveries) is not late
    toNullable(toInt64(greatest(dateDiff('minute', newest_loaded_at, as_of), 0))) as lag_minutes,
    warn_after_minutes,
    error_after_minutes,
    toLowCardinality(toString(multiIf(
        newest_loaded_at is null or toUnixTimestamp64Milli(newest_loaded_at) = 0, 'empty',
        error_after_minutes is not null and dateDiff('minute', newest_loaded_at, as_of) > error_after_minutes, 'error',
        warn_after_minutes is not null and dateDiff('minute', newest_loaded_at, as_of) > warn_after_minutes, 'warn',
        'ok'))) as freshness_status,
    toNullable(as_of) as as_of
from with_as_of
