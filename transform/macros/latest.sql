{#- Two ways to reduce an entity's history to one value per column; every use picks one.

    latest: the value in the newest row, NULL included. A NULL the source reports as the current
    state (a hidden subscriber or like count, comments turned off, a cleared caption, a success's
    empty error class) must win over older values. ClickHouse's argMax skips NULL arguments, so
    the column goes through a one-element tuple, which is never NULL, and comes back out with .1
    (same type, LowCardinality and Nullable as argMax would give).

    last_known: the newest non-NULL value (NULL only when it was never known). For a field the
    source merely omits now and then, where a NULL says nothing about the current value (a
    category the API sometimes leaves out, a country Beat failed to infer on one scrape). -#}

{#- The value of `column` at the newest `version`, NULL included. -#}
{% macro latest(column, version='scraped_at') -%}
    argMax(tuple({{ column }}), {{ version }}).1
{%- endmacro %}

{#- The value of `column` at the newest `version` no later than `cutoff`, NULL included; NULL
    when no row is that old. -#}
{% macro latest_before(column, version, cutoff) -%}
    if(countIf({{ version }} <= {{ cutoff }}) = 0, NULL, argMaxIf(tuple({{ column }}), {{ version }}, {{ version }} <= {{ cutoff }}).1)
{%- endmacro %}

{#- The value of `column` at the newest `version` where it is not NULL; NULL when it never was.
    The condition is spelled out rather than left to argMax's skipping of NULLs. -#}
{% macro last_known(column, version='scraped_at') -%}
    argMaxIf({{ column }}, {{ version }}, {{ column }} is not null)
{%- endmacro %}
