{#- What the project's YAML declares about the freshness of source table `source_name.table_name`
    (read from the graph at execution; defaults while parsing): its loaded_at_field and its
    warn_after / error_after thresholds in minutes (none when not declared). -#}
{% macro declared_freshness(source_name, table_name) -%}
    {%- set minutes = {'minute': 1, 'hour': 60, 'day': 1440} -%}
    {%- set found = {'loaded_at_field': '_ingested_at', 'warn_after': none, 'error_after': none} -%}
    {%- if execute -%}
        {%- for node in graph.sources.values() if node.source_name == source_name and node.name == table_name -%}
            {%- do found.update({'loaded_at_field': node.loaded_at_field or '_ingested_at'}) -%}
            {%- for level in ['warn_after', 'error_after'] -%}
                {%- set rule = (node.freshness or {}).get(level) or {} -%}
                {%- if rule.get('count') and rule.get('period') -%}
                    {%- do found.update({level: rule['count'] * minutes[rule['period']]}) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(found) -}}
{%- endmacro %}
