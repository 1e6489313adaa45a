{#- The s3() table function over a file (or glob) in the drops folder of the S3 bucket, as the
    seeder writes it.

    Where and how come from Stir's settings, which every build passes as the var `stir_s3`
    (stir/dbt_project.py `dbt_vars`): the folder's URL, and ClickHouse's credentials for it, which
    are the server's named collection when STIR_S3_NAMED_COLLECTION is set (production: nothing
    secret passes through dbt), else the keys of the settings (the embedded stack's, which are no
    secret; they appear in compiled SQL), else none (ClickHouse's own credentials, e.g. an
    instance role). Run by hand with transform/profiles.yml, dbt has no such var: the STIR_*
    environment stands in. -#}
{% macro s3_drop(path, format='CSVWithNames', structure=none) -%}
    {%- set s3 = var('stir_s3') -%}
    {%- if s3 is none -%}
        {%- set parts = [env_var('STIR_S3_ENDPOINT_URL', 'http://127.0.0.1:4566').rstrip('/'), env_var('STIR_S3_BUCKET', 'stir-staging')] -%}
        {%- set prefix = env_var('STIR_S3_PREFIX', 'stir').strip('/') -%}
        {%- if prefix %}{% do parts.append(prefix) %}{% endif -%}
        {%- set s3 = {
            'drops_url': parts | join('/') ~ '/drops',
            'named_collection': env_var('STIR_S3_NAMED_COLLECTION', ''),
            'access_key_id': env_var('STIR_S3_ACCESS_KEY_ID', 'stir-local'),
            'secret_access_key': env_var('STIR_S3_SECRET_ACCESS_KEY', 'stir-local-secret'),
        } -%}
    {%- endif -%}
    {%- set url = s3['drops_url'] ~ '/' ~ path -%}
    {%- if s3['named_collection'] -%}
    s3({{ s3['named_collection'] }}, url = '{{ url }}', format = '{{ format }}'{% if structure %}, structure = '{{ structure }}'{% endif %})
    {%- elif s3.get('access_key_id') -%}
    s3(
        '{{ url }}',
        '{{ s3["access_key_id"] }}',
        '{{ s3["secret_access_key"] }}',
        '{{ format }}'{% if structure %},
        '{{ structure }}'{% endif %}
    )
    {%- else -%}
    s3('{{ url }}', '{{ format }}'{% if structure %}, '{{ structure }}'{% endif %})
    {%- endif -%}
{%- endmacro %}
