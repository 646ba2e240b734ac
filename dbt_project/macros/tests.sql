{#- Rows for which the boolean SQL expression does not hold (a generic dbt test). -#}
{% test expression_is_true(model, expression) %}
  select * from {{ model }} where not ({{ expression }})
{% endtest %}

{#- Rows whose combination of columns is not unique (a generic dbt test). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
  select {{ combination_of_columns | join(', ') }}, count(*) as n
  from {{ model }}
  group by {{ combination_of_columns | join(', ') }}
  having count(*) > 1
{% endtest %}
