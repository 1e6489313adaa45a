-- The weekly segment marts partition the same profiles: per week, the audience totals of the
-- category, country, platform and audience-tier marts all equal the sum over profiles of the
-- audience at their week's last scrape (0 when that scrape hid it: argMax over a one-element
-- tuple keeps the NULL argMax alone would skip), recomputed from staging. Returns the weeks
-- that differ.
with expected as (
    select week_start, sum(audience) as total, count() as profiles
    from (
        select toMonday(scraped_at) as week_start, argMax(followers, scraped_at) as audience
        from {{ ref('stg_instagram__account_snapshots') }}
        group by profile_id, week_start
        union all
        select toMonday(scraped_at) as week_start, coalesce(argMax(tuple(subscribers), scraped_at).1, 0) as audience
        from {{ ref('stg_youtube__channel_snapshots') }}
        group by channel_id, week_start
    )
    group by week_start
),
segments as (
    {%- for segment in ['category', 'country', 'platform', 'audience_tier'] %}
    select '{{ segment }}' as segment, week_start, sum(audience_end_total) as total, sum(profiles) as profiles
    from {{ ref('mart_growth_' ~ segment ~ '_weekly') }}
    group by week_start
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)
select s.segment, e.week_start, e.total as expected_total, s.total as found_total, e.profiles as expected_profiles, s.profiles as found_profiles
from expected as e
left join segments as s on s.week_start = e.week_start
where s.total is distinct from e.total or s.profiles is distinct from e.profiles
