{#
  wfmon's vocabulary as the dbt models need it. The Python definition is the one source
  (wfmon/model/vocabulary.py); tests/dagster/test_vocabulary.py renders these macros with
  dbt and fails when they differ from it.
#}

{#-
  The statuses that count as a failure (wfmon.model.FAILURE_STATUSES): an execution that
  failed, timed out or was terminated. Applied to component executions it means failed or
  timed out, since a component is never 'terminated' (the column's CHECK constraint).
-#}
{% macro wfmon_failure_status_values() -%}
  {{ return(['failed', 'terminated', 'timed_out']) }}
{%- endmacro %}

{#- The failure statuses as an SQL list, for `status in {{ wfmon_failure_statuses() }}`. -#}
{% macro wfmon_failure_statuses() -%}
  ({%- for status in wfmon_failure_status_values() -%}
    '{{ status }}'{% if not loop.last %}, {% endif %}
  {%- endfor -%})
{%- endmacro %}
