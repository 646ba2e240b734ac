-- One row per project: executions, failures, longest run, most used workflow, component
-- and task queue. Incremental: only projects with executions changed since the last
-- refresh are recomputed (over all their executions), then MERGEd on project_id.
{{ config(
    unique_key='project_id',
    merge_exclude_columns=['id'],
    pre_hook="{{ wfmon_register_task_queues() }}",
) }}

with affected as (
    select distinct e.project_id
    from {{ source('wfmon', 'workflow_executions') }} e
    where {{ wfmon_changed_since_last_refresh('e.updated_at') }}
),

executions as (
    select x.*
    from {{ ref('stg_executions') }} x
    join affected a on a.project_id = x.project_id
),

totals as (
    select
        project_id,
        count(*) as total_executions,
        count(*) filter (where is_failure) as total_failures,
        max(closed_at) filter (where is_failure) as last_failure_at,
        max(started_at) as last_execution_at
    from executions
    group by project_id
),

longest as (
    select distinct on (project_id) project_id, duration_ms, workflow_id
    from executions
    where duration_ms is not null
    order by project_id, duration_ms desc, closed_at desc
),

workflow_usage as (
    select distinct on (project_id) project_id, workflow_id, uses
    from (
        select project_id, workflow_id, count(*) as uses
        from executions
        where workflow_id is not null
        group by project_id, workflow_id
    ) u
    order by project_id, uses desc, workflow_id
),

component_usage as (
    select distinct on (project_id) project_id, component_id, uses
    from (
        select x.project_id, c.component_id, count(*) as uses
        from executions x
        {{ wfmon_join_components(ref('stg_component_executions'), 'x.id') }}
        where c.component_id is not null
        group by x.project_id, c.component_id
    ) u
    order by project_id, uses desc, component_id
),

queue_usage as (
    select distinct on (u.project_id) u.project_id, q.id as task_queue_id, u.uses
    from (
        select project_id, task_queue, count(*) as uses
        from executions
        group by project_id, task_queue
    ) u
    join {{ source('wfmon', 'task_queues') }} q on q.name = u.task_queue
    order by u.project_id, u.uses desc, u.task_queue
)

select
    gen_random_uuid() as id,
    t.project_id,
    w.workflow_id as most_used_workflow_id,
    coalesce(w.uses, 0)::integer as most_used_workflow_count,
    c.component_id as most_used_component_id,
    coalesce(c.uses, 0)::integer as most_used_component_count,
    q.task_queue_id as most_used_task_queue_id,
    coalesce(q.uses, 0)::integer as most_used_task_queue_count,
    t.total_executions::integer as total_executions,
    l.duration_ms as longest_run_duration_ms,
    l.workflow_id as longest_run_workflow_id,
    t.total_failures::integer as total_failures,
    t.last_failure_at,
    t.last_execution_at,
    now() as updated_at
from totals t
left join longest l on l.project_id = t.project_id
left join workflow_usage w on w.project_id = t.project_id
left join component_usage c on c.project_id = t.project_id
left join queue_usage q on q.project_id = t.project_id
