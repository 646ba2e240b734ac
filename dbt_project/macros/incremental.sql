{#
  The lower bound on workflow_executions.updated_at of this refresh: the target's last
  refresh (its max(updated_at)) minus a lookback, so a sync that committed while the
  previous refresh ran is not missed. none means "recompute every key": not incremental,
  var full_recompute, or an empty target (the first refresh).

  It is read when the model compiles and written into the SQL as a constant, so PostgreSQL
  plans with the real number of changed rows instead of guessing a third of the table.
#}
{% macro wfmon_watermark() -%}
  {%- if not execute or not is_incremental() or var('full_recompute') -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set result = run_query(
      "select (max(updated_at) - interval '" ~ (var('lookback_minutes') | int)
      ~ " minutes')::text from " ~ this) -%}
  {%- set value = result.columns[0].values()[0] -%}
  {{ return(value) }}
{%- endmacro %}

{#- The changed-rows filter of an incremental refresh (true when recomputing everything). -#}
{% macro wfmon_changed_since_last_refresh(column) -%}
  {%- set watermark = wfmon_watermark() -%}
  {%- if watermark is none -%}
    true
  {%- else -%}
    {{ column }} > '{{ watermark }}'::timestamptz
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

{#
  Join the component executions of the executions aliased by `execution_id`'s table.
  Incremental refreshes touch few executions: a LATERAL index lookup per execution
  (OFFSET 0 keeps PostgreSQL from flattening it back into a hash join that reads the whole
  table). A full recompute reads everything: a plain join (hash join) is faster there.
#}
{% macro wfmon_join_components(components_relation, execution_id) -%}
  {%- if wfmon_watermark() is not none -%}
    cross join lateral (
        select * from {{ components_relation }} c0
        where c0.workflow_execution_id = {{ execution_id }}
        offset 0
    ) c
  {%- else -%}
    join {{ components_relation }} c on c.workflow_execution_id = {{ execution_id }}
  {%- endif -%}
{%- endmacro %}
