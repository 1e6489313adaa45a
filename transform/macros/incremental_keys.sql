{#- The per-key incremental models of the core tier (one row per profile, channel or video,
    `incremental_strategy='legacy'` on that key): each run recomputes the keys an increment
    touched, from all their rows, and swaps in a copy of the table where those keys' rows are
    replaced (EXCHANGE TABLES: a reader sees the old table or the new one, never a half). These
    macros give the touched keys, each a `select distinct <key>` to UNION; they read the model's
    own table ({{ this }}) for its watermarks, so they belong inside `{% if is_incremental() %}`.
    A row's `as_of` is the data's as-of time when the row was last recomputed; the table's is the
    newest (`as_of(ref(...), 'as_of')`), which is what readers use. -#}

{#- Where an incremental run starts reading by ingestion time: the newest `model_column` the
    model's table holds, less var incremental_overlap_minutes (rows being inserted while the
    previous run read, stamped before it but visible after). No watermark yet (a column still
    all NULL): from the start. Every incremental model that cuts on ingestion time uses it. -#}
{% macro ingestion_watermark(model_column) -%}
    ifNull(
        (select max({{ model_column }}) - interval {{ var('incremental_overlap_minutes') }} minute from {{ this }}),
        toDateTime64(0, 3, 'UTC')
    )
{%- endmacro %}

{#- Keys with rows ingested into `relation` after the model's watermark, the newest
    `model_column` it holds, less var incremental_overlap_minutes (rows being inserted while the
    previous run read). A late delivery of an old observation has a new ingestion time, so its key
    is picked up. Reads the raw table when it can: a set of keys needs no dedupe. -#}
{% macro keys_ingested_since(relation, key, model_column, source_column='_ingested_at', where=none) -%}
    select distinct {{ key }}
    from {{ relation }}
    where {{ source_column }} > {{ ingestion_watermark(model_column) }}
    {%- if where %} and ({{ where }}){% endif %}
{%- endmacro %}

{#- Keys the model holds with a row in `relation`, ingested since the model's watermark (the
    newest `watermark_column` it holds, less the overlap, which bounds the scan), that the key's
    stored row does not reflect yet: for a pair (raw column, stored column) of `newer_than`, a
    raw value above the stored one (the model keeps, per key, the maximum of each), or nothing
    stored. For a secondary source delivered in drops: with keys_ingested_since, the rows of the
    newest drop, all inside the overlap while no newer drop comes, would touch every key of that
    drop on every run. A key the model does not hold yet comes with its primary source, and its
    first computation reads all its rows. -#}
{% macro keys_not_reflected(relation, key, watermark_column, newer_than) -%}
    select distinct r.{{ key }}
    from {{ relation }} as r
    inner join (
        select {{ key }}, {{ newer_than.values() | join(', ') }} from {{ this }}
    ) as m on m.{{ key }} = r.{{ key }}
    where r._ingested_at > {{ ingestion_watermark(watermark_column) }}
      and (
        {%- for raw, stored in newer_than.items() %}
        {% if not loop.first %}or {% endif %}m.{{ stored }} is null or r.{{ raw }} > m.{{ stored }}
        {%- endfor %}
      )
{%- endmacro %}

{#- Keys with a row whose `time_column` left a window of `days` days ending at as_of, now that
    as_of moves from the model's (the newest `as_of` it holds) to `new_as_of`: what they count
    "in the last N days" or hold "N days ago" changes although nothing was ingested for them. -#}
{% macro keys_leaving_window(relation, key, time_column, days, new_as_of) -%}
    select distinct {{ key }}
    from {{ relation }}
    where {{ time_column }} > (select max(as_of) from {{ this }}) - interval {{ days }} day
      and {{ time_column }} <= ({{ new_as_of }}) - interval {{ days }} day
{%- endmacro %}

{#- Keys whose stored Stir category no longer matches the taxonomy drop (the shared layer
    reloads it daily): a changed mapping reaches every key that has the label. -#}
{% macro keys_recategorized(source_name, key) -%}
    select m.{{ key }}
    from {{ this }} as m
    left join {{ category_map(source_name) }} as cat on cat.source_category = m.source_category
    where isNull(m.category) != isNull(nullIf(cat.category, ''))
       or m.category != nullIf(cat.category, '')
       or isNull(m.category_group) != isNull(nullIf(cat.category_group, ''))
       or m.category_group != nullIf(cat.category_group, '')
{%- endmacro %}
