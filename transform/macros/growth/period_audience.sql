{#- The audience and post count of every profile (both platforms) at its last scrape of each
    period (`period` is a ClickHouse function of the scrape time: toMonday, toStartOfMonth...),
    with the period's scrape count: the grain a growth-over-period mart starts from. The audience
    is latest(): a count hidden at the period's last scrape is NULL, not an older value. -#}
{% macro period_audience(period) -%}
    select
        'instagram' as platform,
        concat('instagram:', toString(profile_id)) as profile_key,
        {{ period }}(scraped_at) as period_start,
        toNullable({{ latest('followers') }}) as audience_end,
        {{ latest('posts_count') }} as posts_end,
        count() as snapshots
    from {{ ref('stg_instagram__account_snapshots') }}
    group by profile_id, period_start
    union all
    select
        'youtube' as platform,
        concat('youtube:', channel_id) as profile_key,
        {{ period }}(scraped_at) as period_start,
        {{ latest('subscribers') }} as audience_end,
        {{ latest('video_count') }} as posts_end,
        count() as snapshots
    from {{ ref('stg_youtube__channel_snapshots') }}
    group by channel_id, period_start
{%- endmacro %}
