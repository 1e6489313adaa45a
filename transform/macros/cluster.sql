{#- Building on a ClickHouse cluster (STIR_CLICKHOUSE_CLUSTER: the profile's `cluster`).

    dbt-clickhouse then creates every table ON CLUSTER, but with the engine its config names:
    a plain MergeTree on every node would keep each node's rows to itself. This overrides
    dbt-clickhouse's `engine_clause` (1.10.3, materializations/table.sql), the one macro every
    CREATE TABLE of a model takes its engine from (tables, incremental models, the local table
    of a Distributed one), so that a MergeTree-family engine becomes its Replicated twin. As
    with the `unit` materialization, a root-project macro wins over the adapter's.

    The Replicated engine gets no path arguments: the server's default_replica_path and
    default_replica_name ('/clickhouse/tables/{uuid}/{shard}' and '{replica}' unless
    configured) apply, so a table copied with CREATE TABLE ... AS or renamed by a rebuild keeps
    a path of its own. Without a cluster, both macros render exactly what dbt-clickhouse's
    does. `stir seed` applies the same rule to the raw tables (stir/sources/seed.py). -#}
{% macro engine_clause() %}
  engine = {{ replicated_engine(config.get('engine', default='MergeTree()')) }}
{%- endmacro -%}

{#- `engine` as configured; under a cluster, Replicated<engine> for a MergeTree-family engine
    that is not replicated already (its arguments kept: ReplicatedReplacingMergeTree(ver)). -#}
{% macro replicated_engine(engine) %}
  {%- set family = engine.split('(')[0].strip() -%}
  {%- if target.get('cluster') and family.endswith('MergeTree')
        and not family.startswith('Replicated') and not family.startswith('Shared') -%}
    {{ return('Replicated' ~ engine.strip()) }}
  {%- endif -%}
  {{ return(engine) }}
{% endmacro %}
