{#- Outcome classes of a Beat request, from its error class (NULL on success). -#}

{#- Throttled by the platform: Instagram's rate limit (429) or YouTube's API quota. -#}
{% macro is_rate_limited(error_class) -%}
    coalesce({{ error_class }} in ('RateLimited', 'QuotaExceeded'), false)
{%- endmacro %}

{#- A failure the scraper is accountable for: every failure but NotFound (the target is gone,
    which no retry fixes and no scraper causes). What the SLO's error budget counts. -#}
{% macro is_scraper_failure(is_success, error_class) -%}
    (not {{ is_success }} and coalesce({{ error_class }}, '') != 'NotFound')
{%- endmacro %}
