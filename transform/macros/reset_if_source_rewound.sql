{#- Pre-hook of an incremental model whose runs are cut on a watermark of ingestion time: when the
    newest row of the source is older than the model's watermark, the source's history was
    replaced (a reseed, a restore, a reload), so the incremental state describes data that no
    longer exists. Empty the model; its run then rebuilds from the whole source, as a
    full refresh would. -#}
{% macro reset_if_source_rewound(source_relation, source_column, model_column) %}
    {%- if execute and is_incremental() -%}
        {%- set check -%}
            select
                (select max({{ source_column }}) from {{ source_relation }}) as source_newest,
                (select max({{ model_column }}) from {{ this }}) as watermark,
                source_newest < watermark as rewound
        {%- endset -%}
        {%- set row = run_query(check).rows[0] -%}
        {#- A Distributed table's TRUNCATE leaves the shards' rows: empty its local tables. -#}
        {%- set emptied = this -%}
        {%- if config.get('materialized') == 'distributed_incremental' -%}
            {%- set local = this.incorporate(path={'identifier': this.identifier ~ adapter.get_clickhouse_local_suffix()}) -%}
            {%- set emptied = local ~ ' ' ~ on_cluster_clause(local) -%}
        {%- endif -%}
        {%- if row[2] -%}
            {{ log("source " ~ source_relation ~ " ends at " ~ row[0] ~ ", before the watermark " ~ row[1] ~ " of " ~ this ~ ": rebuilding it", info=true) }}
            truncate table {{ emptied }}
        {%- else -%}
            select 1
        {%- endif -%}
    {%- else -%}
        select 1
    {%- endif -%}
{% endmacro %}
