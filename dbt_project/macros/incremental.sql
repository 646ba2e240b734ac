{#
  What an incremental refresh looks at: rows of workflow_executions changed since the
  target's last refresh (its max(updated_at)), minus a lookback so a sync that committed
  while the previous refresh ran is not missed. Everything when the target is empty, on the
  first run, or with var full_recompute.
#}
{% macro wfmon_changed_since_last_refresh(column) -%}
  {%- if is_incremental() and not var('full_recompute') -%}
    {{ column }} > (
        select coalesce(max(t.updated_at), '-infinity'::timestamptz) from {{ this }} t
    ) - interval '{{ var("lookback_minutes") | int }} minutes'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{#- The UTC day of a timestamptz: the day of the Dagster partition holding it. -#}
{% macro wfmon_utc_day(column) -%}
  (({{ column }}) at time zone 'UTC')::date
{%- endmacro %}

{#- A percentile of a duration column, as a whole number of milliseconds. -#}
{% macro wfmon_percentile_ms(fraction, column) -%}
  round((percentile_cont({{ fraction }}) within group (order by {{ column }}))::numeric)::bigint
{%- endmacro %}

{#
  project_statistics stores the most used task queue by id: make sure every queue name
  seen in the changed executions has a task_queues row (wfmon_system may insert them).
#}
{% macro wfmon_register_task_queues() -%}
  insert into {{ source('wfmon', 'task_queues') }} (name)
  select distinct e.task_queue
  from {{ source('wfmon', 'workflow_executions') }} e
  where e.task_queue <> '' and {{ wfmon_changed_since_last_refresh('e.updated_at') }}
  on conflict (name) do nothing
{%- endmacro %}
