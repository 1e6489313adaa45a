{#- A handle as people type it ('@Name', ' name ', 'https://instagram.com/name/') -> 'name'. -#}
{% macro normalize_handle(column) -%}
    lower(trimBoth(replaceRegexpOne(replaceRegexpOne(trimBoth({{ column }}), '^(https?://)?(www\\.)?(instagram\\.com|youtube\\.com)/(@)?', ''), '^@|/+$', '')))
{%- endmacro %}
