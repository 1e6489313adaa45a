{#- For each metric: its percentile among the rows (0..1, percent_rank over the non-NULL values)
    and its grade, the percentile cut into `buckets` equal buckets (1 = bottom, `buckets` = top).
    Two columns per metric, `<metric>_percentile` and `<metric>_grade`; NULL metric, NULL grade. -#}
{% macro percentile_grades(metrics, buckets=5, partition_by=[]) -%}
    {%- for metric in metrics %}
    {%- set window -%}
        over (partition by {{ (partition_by + ['isNull(' ~ metric ~ ')']) | join(', ') }} order by {{ metric }})
    {%- endset %}
    if({{ metric }} is null, null, percent_rank() {{ window }}) as {{ metric }}_percentile,
    if({{ metric }} is null, null, toUInt8(least({{ buckets }}, 1 + floor(percent_rank() {{ window }} * {{ buckets }})))) as {{ metric }}_grade
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}
