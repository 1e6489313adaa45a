{#- Every leaderboard's ranks, by the rules transform/README.md states (one place for them).
    One SELECT per dimension (a list of columns of `relation`, one row per profile), UNION
    ALL'ed: each row once per dimension, with its dimension name ('country+category'), value
    ('IN|beauty'), the size of its dimension value, every column of `relation`, and its rank()
    (1 = largest) among the rows of the same value:
    - `audience_rank` by `audience`, and one rank per (name, column) of `earlier_audiences` (the
      audience 7 days ago...), among every profile with a value;
    - `engagement_rank` by `engagement_rate`, among the profiles of the same platform with at
      least var leaderboard_min_audience followers: Instagram's rate is per follower and
      YouTube's per view, so the two never share a ranking, and a 40-follower account with 30%
      engagement leads no list;
    - `growth_rank` by `growth_30d_pct`, among the profiles with at least that audience.
    A rank is NULL where the row does not compete. `relation` has the columns platform,
    audience, engagement_rate and growth_30d_pct. -#}
{% macro leaderboard_ranks(relation, dimensions, earlier_audiences=[]) -%}
    {%- set eligible = 'audience >= ' ~ var('leaderboard_min_audience') -%}
    {#- (rank name, metric, who competes, columns that split the ranking beyond the dimension) -#}
    {%- set ranks = [('audience_rank', 'audience', 'audience is not null', [])] -%}
    {%- for name, column in earlier_audiences -%}
        {%- do ranks.append((name, column, column ~ ' is not null', [])) -%}
    {%- endfor -%}
    {%- do ranks.append(('engagement_rank', 'engagement_rate', 'engagement_rate is not null and ' ~ eligible, ['platform'])) -%}
    {%- do ranks.append(('growth_rank', 'growth_30d_pct', 'growth_30d_pct is not null and ' ~ eligible, [])) -%}
    {%- for dims in dimensions %}
    select
        '{{ dims | join("+") }}' as dimension,
        concat({{ dims | join(", '|', ") }}) as dimension_value,
        *,
        {%- for name, metric, competes, split_by in ranks %}
        {%- set partition = dims + (split_by | reject('in', dims) | list) %}
        if({{ competes }}, rank() over (partition by {{ partition | join(', ') }}, {{ competes }} order by {{ metric }} desc), null) as {{ name }},
        {%- endfor %}
        count() over (partition by {{ dims | join(', ') }}) as dimension_profiles
    from {{ relation }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
