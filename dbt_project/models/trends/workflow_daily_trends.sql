-- Per workflow and UTC day of close: runs, successes, failures, avg/p50/p95 duration.
-- Incremental: the (workflow, day) groups holding a changed execution are recomputed
-- whole, then MERGEd on (workflow_id, day).
{{ config(unique_key=['workflow_id', 'day']) }}

with changed as (
    select distinct e.workflow_id, {{ wfmon_utc_day('e.closed_at') }} as day
    from {{ source('wfmon', 'workflow_executions') }} e
    where e.workflow_id is not null
      and e.closed_at is not null
      and {{ wfmon_changed_since_last_refresh('e.updated_at') }}
),

executions as (
    select x.*, g.day
    from changed g
    join {{ ref('stg_executions') }} x
      on x.workflow_id = g.workflow_id
     and x.closed_at >= g.day::timestamp at time zone 'UTC'
     and x.closed_at < (g.day + 1)::timestamp at time zone 'UTC'
)

select
    workflow_id,
    day,
    (array_agg(project_id order by closed_at desc))[1] as project_id,
    count(*)::integer as runs,
    (count(*) filter (where status = 'completed'))::integer as successful_runs,
    (count(*) filter (where is_failure))::integer as failed_runs,
    round(avg(duration_ms))::bigint as avg_duration_ms,
    {{ wfmon_percentile_ms(0.5, 'duration_ms') }} as p50_duration_ms,
    {{ wfmon_percentile_ms(0.95, 'duration_ms') }} as p95_duration_ms,
    now() as updated_at
from executions
group by workflow_id, day
