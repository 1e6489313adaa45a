{#- Generic test: every value of a rank column lies in 1..N, N the ranking setting `setting`
    (a var of dbt_project.yml; default ranking_top_n), so a top-N mart never serves more than its N. -#}
{% test within_top_n(model, column_name, setting='ranking_top_n') %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null or {{ column_name }} < 1 or {{ column_name }} > {{ var(setting) }}
{% endtest %}
