{#- dbt-clickhouse's `unit` materialization (1.10.3), with its temporary table dropped by name.

    The adapter learns the model's column types from an empty temporary table named after the
    unit test, then drops it as `db.name`, which does not reach a temporary table. On a ClickHouse
    server the session ends with the run and takes the table along; the embedded server shares one
    session between all clients (stir/stack/clickhouse/http.py), so the table outlives the run and
    the next build's unit tests fail with TABLE_ALREADY_EXISTS. DROP TEMPORARY TABLE, before (a
    leftover of a run that failed mid-test) and after, works on both. The root project's
    materialization wins over the adapter's, so this replaces it for this project only. -#}
{%- materialization unit, adapter='clickhouse' -%}

  {% set relations = [] %}

  {% set expected_rows = config.get('expected_rows') %}
  {% set expected_sql = config.get('expected_sql') %}
  {% set tested_expected_column_names = expected_rows[0].keys() if (expected_rows | length ) > 0 else get_columns_in_query(sql) %}

  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set temp_relation = make_temp_relation(target_relation, '__dbt_tmp')-%}
  {%- set temp_relation = temp_relation.incorporate(is_temporary=True)-%}
  {% call statement('drop_unit_test_columns_table') -%}
    drop temporary table if exists {{ temp_relation.identifier }}
  {%- endcall %}
  {% do get_create_table_as_sql(True, temp_relation, get_empty_subquery_sql(sql)) %}
  {%- set columns_in_relation = adapter.get_columns_in_relation(temp_relation) -%}
  {%- set column_name_to_data_types = {} -%}
  {%- set column_name_to_quoted = {} -%}
  {%- for column in columns_in_relation -%}
  {%-   do column_name_to_data_types.update({column.name|lower: column.data_type}) -%}
  {%-   do column_name_to_quoted.update({column.name|lower: column.quoted}) -%}
  {%- endfor -%}

  {%- set expected_column_names_quoted = [] -%}
  {%- for column_name in tested_expected_column_names -%}
  {%-   do expected_column_names_quoted.append(column_name_to_quoted[column_name|lower]) -%}
  {%- endfor -%}

  {% if not expected_sql %}
  {%   set expected_sql = get_expected_sql(expected_rows, column_name_to_data_types, column_name_to_quoted) %}
  {% endif %}
  {% set unit_test_sql = get_unit_test_sql(sql, expected_sql, expected_column_names_quoted) %}

  {% call statement('main', fetch_result=True) -%}

    {{ unit_test_sql }}

  {%- endcall %}

  {% call statement('drop_unit_test_columns_table') -%}
    drop temporary table if exists {{ temp_relation.identifier }}
  {%- endcall %}

  {{ return({'relations': relations}) }}

{%- endmaterialization -%}
