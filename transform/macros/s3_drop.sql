{#- The s3() table function over a file (or glob) in the drops folder of the staging bucket
    (path-style URL built from the STIR_S3_* settings, as the seeder writes it).

    Credentials: with STIR_S3_NAMED_COLLECTION set, the server's named collection of that name
    holds them (production: nothing secret passes through dbt); otherwise they are inlined from
    STIR_S3_ACCESS_KEY_ID / STIR_S3_SECRET_ACCESS_KEY, which is meant for the embedded stack,
    whose keys are not secrets; inlined keys appear in dbt's compiled SQL and logs. -#}
{% macro s3_drop(path, format='CSVWithNames', structure=none) -%}
    {%- set parts = [env_var('STIR_S3_ENDPOINT_URL', 'http://127.0.0.1:4566').rstrip('/'), env_var('STIR_S3_BUCKET', 'stir-staging')] -%}
    {%- set prefix = env_var('STIR_S3_PREFIX', 'stir').strip('/') -%}
    {%- if prefix %}{% do parts.append(prefix) %}{% endif -%}
    {%- set url = parts | join('/') ~ '/drops/' ~ path -%}
    {%- set collection = env_var('STIR_S3_NAMED_COLLECTION', '') -%}
    {%- if collection -%}
    s3({{ collection }}, url = '{{ url }}', format = '{{ format }}'{% if structure %}, structure = '{{ structure }}'{% endif %})
    {%- else -%}
    s3(
        '{{ url }}',
        '{{ env_var("STIR_S3_ACCESS_KEY_ID", "stir-local") }}',
        '{{ env_var("STIR_S3_SECRET_ACCESS_KEY", "stir-local-secret") }}',
        '{{ format }}'{% if structure %},
        '{{ structure }}'{% endif %}
    )
    {%- endif -%}
{%- endmacro %}
