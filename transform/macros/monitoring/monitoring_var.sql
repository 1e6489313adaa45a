{#- A setting of the monitoring marts: `var(name)` when the project or the command line sets
    it, else the default below (one place for every monitoring window and threshold). -#}
{% macro monitoring_var(name) -%}
    {%- set defaults = {
        'monitoring_hours': 48,
        'monitoring_error_days': 7,
        'monitoring_target_days': 14,
        'stale_after_hours': 24,
        'failing_min_failures': 3,
        'slo_window_days': 7,
        'slo_success_target': 0.95,
    } -%}
    {%- if name not in defaults -%}
        {{ exceptions.raise_compiler_error("unknown monitoring setting " ~ name) }}
    {%- endif -%}
    {{- return(var(name, defaults[name])) -}}
{%- endmacro %}
