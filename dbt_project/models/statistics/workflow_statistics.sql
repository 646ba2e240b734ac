-- One row per workflow: runs, outcomes, durations, most used component, errors.
-- Incremental: only workflows with executions changed since the last refresh are
-- recomputed (over all their executions), then MERGEd on workflow_id. The row id is kept
-- on update (merge_exclude_columns).
{{ config(unique_key='workflow_id', merge_exclude_columns=['id']) }}

with affected as (
    select distinct e.workflow_id
    from {{ source('wfmon', 'workflow_executions') }} e
    where e.workflow_id is not null
      and {{ wfmon_changed_since_last_refresh('e.updated_at') }}
),

executions as (
    select x.*
    from {{ ref('stg_executions') }} x
    join affected a on a.workflow_id = x.workflow_id
),

runs as (
    select
        workflow_id,
        count(*) as total_runs,
        count(*) filter (where status = 'completed') as successful_runs,
        count(*) filter (where is_failure) as failed_runs,
        round(avg(duration_ms) filter (where closed_at is not null))::bigint as avg_duration_ms,
        min(duration_ms) filter (where closed_at is not null) as min_duration_ms,
        max(duration_ms) filter (where closed_at is not null) as max_duration_ms,
        max(closed_at) filter (where is_failure) as last_failed_at,
        max(started_at) as last_run_at
    from executions
    group by workflow_id
),

components as (
    select x.workflow_id, c.component_id, c.failed_attempts,
           coalesce(c.completed_at, c.started_at) as ended_at
    from executions x
    {{ wfmon_join_components(ref('stg_component_executions'), 'x.id') }}
),

component_usage as (
    select distinct on (workflow_id) workflow_id, component_id, uses
    from (
        select workflow_id, component_id, count(*) as uses
        from components
        where component_id is not null
        group by workflow_id, component_id
    ) u
    order by workflow_id, uses desc, component_id
),

component_errors as (
    select
        workflow_id,
        sum(failed_attempts) as errors,
        max(ended_at) filter (where failed_attempts > 0) as last_error_at
    from components
    group by workflow_id
)

select
    gen_random_uuid() as id,
    r.workflow_id,
    r.total_runs::integer as total_runs,
    r.successful_runs::integer as successful_runs,
    r.failed_runs::integer as failed_runs,
    r.avg_duration_ms,
    r.min_duration_ms,
    r.max_duration_ms,
    u.component_id as most_used_component_id,
    coalesce(u.uses, 0)::integer as most_used_component_count,
    coalesce(ce.errors, 0)::integer as total_errors,
    greatest(ce.last_error_at, r.last_failed_at) as last_error_at,
    r.last_run_at,
    now() as updated_at
from runs r
left join component_usage u on u.workflow_id = r.workflow_id
left join component_errors ce on ce.workflow_id = r.workflow_id
