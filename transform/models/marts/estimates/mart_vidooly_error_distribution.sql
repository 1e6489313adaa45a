{{ config(order_by='(dimension, dimension_value)', tags=['profile-ranking']) }}
-- How Vidooly's monthly-view estimates err, per dimension value: all channels, per country, per
-- Stir category and per Vidooly's own category — the quantiles of the relative error, the
-- median log ratio (its bias: below 0, Vidooly underestimates), the typical size of the error
-- and the share of channels within 25% and within a factor of 2. Read by the data team and by
-- brand managers judging Vidooly numbers for creators we do not scrape.
{% set dimensions = {'all': "'all'", 'country': 'country', 'category': 'category', 'vidooly_category': 'vidooly_stir_category'} %}
with channels as (
    select * from {{ ref('int_estimates__vidooly_vs_observed') }}
),
by_dimension as (
    {%- for name, column in dimensions.items() %}
    select '{{ name }}' as dimension, coalesce(toString({{ column }}), 'unknown') as dimension_value, *
    from channels
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)
select
    toLowCardinality(toString(dimension)) as dimension,
    toString(dimension_value) as dimension_value,
    toInt32(count()) as channels,
    toInt32(countIf(views_log_ratio is not null)) as channels_measured,
    toNullable(toFloat64(if(channels_measured = 0, NULL, quantileExactIf(0.1)(views_error_pct, views_log_ratio is not null)))) as error_pct_p10,
    toNullable(toFloat64(if(channels_measured = 0, NULL, quantileExactIf(0.5)(views_error_pct, views_log_ratio is not null)))) as error_pct_median,
    toNullable(toFloat64(if(channels_measured = 0, NULL, quantileExactIf(0.9)(views_error_pct, views_log_ratio is not null)))) as error_pct_p90,
    toNullable(toFloat64(if(channels_measured = 0, NULL, quantileExactIf(0.5)(views_log_ratio, views_log_ratio is not null)))) as median_log_ratio,
    toNullable(toFloat64(if(channels_measured = 0, NULL, quantileExactIf(0.5)(views_abs_log_error, views_log_ratio is not null)))) as median_abs_log_error,
    toNullable(toFloat64({{ safe_divide('countIf(views_abs_log_error <= log(1.25))', 'channels_measured') }})) as share_within_25pct,
    toNullable(toFloat64({{ safe_divide('countIf(views_abs_log_error <= log(2))', 'channels_measured') }})) as share_within_2x,
    toNullable(toFloat64({{ safe_divide('countIf(views_log_ratio > 0)', 'channels_measured') }})) as share_overestimated
from by_dimension
group by dimension, dimension_value
