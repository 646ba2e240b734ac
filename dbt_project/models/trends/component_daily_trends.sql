-- Per workflow, UTC day of the execution's close and component: runs, failures, retries
-- (all and expected ones), avg/p50/p95 duration. Incremental like workflow_daily_trends:
-- the (workflow, day) groups holding a changed execution are recomputed whole, then
-- MERGEd on (workflow_id, day, component_name).
{{ config(unique_key=['workflow_id', 'day', 'component_name']) }}

with changed as (
    select distinct e.workflow_id, {{ wfmon_utc_day('e.closed_at') }} as day
    from {{ source('wfmon', 'workflow_executions') }} e
    where e.workflow_id is not null
      and e.closed_at is not null
      and {{ wfmon_changed_since_last_refresh('e.updated_at') }}
),

components as (
    select c.*, x.workflow_id, x.project_id, x.closed_at, g.day
    from changed g
    join {{ ref('stg_executions') }} x
      on x.workflow_id = g.workflow_id
     and x.closed_at >= g.day::timestamp at time zone 'UTC'
     and x.closed_at < (g.day + 1)::timestamp at time zone 'UTC'
    {{ wfmon_join_components(ref('stg_component_executions'), 'x.id') }}
)

select
    workflow_id,
    day,
    component_name,
    (array_agg(project_id order by closed_at desc))[1] as project_id,
    (array_agg(component_id) filter (where component_id is not null))[1] as component_id,
    count(*)::integer as runs,
    (count(*) filter (where is_failure))::integer as failures,
    coalesce(sum(retry_count), 0)::integer as retries,
    coalesce(sum(retry_count) filter (where is_expected_retry), 0)::integer as expected_retries,
    round(avg(duration_ms))::bigint as avg_duration_ms,
    {{ wfmon_percentile_ms(0.5, 'duration_ms') }} as p50_duration_ms,
    {{ wfmon_percentile_ms(0.95, 'duration_ms') }} as p95_duration_ms,
    now() as updated_at
from components
group by workflow_id, day, component_name
