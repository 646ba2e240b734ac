{#
  Failure groups' bookkeeping (migrations/0410): failure_group_builds holds when each
  failures model last built.

  wfmon_failures_watermark(model): the lower bound on workflow_executions.updated_at (or
  failure_group_days.updated_at) of this refresh: the model's last build minus the
  lookback, so a sync that committed while the last build ran is not missed. none means
  "recompute everything": not incremental, var full_recompute, or never built. The last
  build is used rather than max(updated_at) of the rows, because a refresh that finds no
  new failures writes no row and would otherwise never move the watermark on.
#}
{% macro wfmon_failures_watermark(model) -%}
  {%- if not execute or not is_incremental() or var('full_recompute') -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set result = run_query(
      "select (max(built_at) - interval '" ~ (var('lookback_minutes') | int)
      ~ " minutes')::text from public.failure_group_builds where model = '" ~ model ~ "'") -%}
  {%- set value = result.columns[0].values()[0] -%}
  {{ return(value) }}
{%- endmacro %}

{#
  The workflow executions a failures build looks at, as a subquery: those changed since
  `watermark` (wfmon_failures_watermark), or all of them when it is none. Only executions
  of a workflow can fail in a group.
#}
{% macro wfmon_failures_changed_executions(watermark) -%}
  (select e.* from {{ source('wfmon', 'workflow_executions') }} e
   where e.workflow_id is not null
   {%- if watermark is not none %} and e.updated_at > '{{ watermark }}'::timestamptz{% endif %})
{%- endmacro %}

{#
  Pre-hook of failure_group_executions (inside the model's transaction): delete the rows of
  the executions the build is about to write again, so the appended rows replace them.
#}
{% macro wfmon_failures_forget_changed_executions(model) -%}
  {%- set watermark = wfmon_failures_watermark(model) -%}
  delete from {{ this }}
  {%- if watermark is not none %}
  where execution_id in (select x.id from {{ wfmon_failures_changed_executions(watermark) }} x)
  {%- endif %}
{%- endmacro %}

{#- Post-hook of a failures model: record that it was built (its transaction's start). -#}
{% macro wfmon_record_failures_build(model) -%}
  insert into public.failure_group_builds (model, built_at) values ('{{ model }}', now())
  on conflict (model) do update set built_at = excluded.built_at
{%- endmacro %}

{#
  The rows of `n` (a failures model's computed rows) that are new or whose figures differ
  from the table's row with the same key: a refresh MERGEs only those, so updated_at says
  when a row last changed. Every column but the key and updated_at is compared (the
  column list is the table's own, read from the database: one definition).
#}
{% macro wfmon_failures_only_changed(key) -%}
  {%- if is_incremental() -%}
    {%- set compared = [] -%}
    {%- for column in adapter.get_columns_in_relation(this) -%}
      {%- if column.name not in key and column.name != 'updated_at' -%}
        {%- do compared.append(column.name) -%}
      {%- endif -%}
    {%- endfor -%}
    left join {{ this }} t
      on {% for k in key %}t.{{ k }} = n.{{ k }}{% if not loop.last %} and {% endif %}{% endfor %}
    where t.{{ key[0] }} is null
       or (n.{{ compared | join(', n.') }}) is distinct from (t.{{ compared | join(', t.') }})
  {%- endif -%}
{%- endmacro %}
