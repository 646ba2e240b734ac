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

{#- Post-hook of a failures model: record that it was built (its transaction's start). -#}
{% macro wfmon_record_failures_build(model) -%}
  insert into public.failure_group_builds (model, built_at) values ('{{ model }}', now())
  on conflict (model) do update set built_at = excluded.built_at
{%- endmacro %}
