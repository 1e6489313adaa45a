{#- The model holds exactly `expected` distinct values of `column` (e.g. leaderboard dimensions). -#}
{% test dimension_count(model, expected, column='dimension') %}
select count(distinct {{ column }}) as found
from {{ model }}
having found != {{ expected }}
{% endtest %}
