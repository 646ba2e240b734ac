-- Executions as the statistics need them: no payloads, no histories, a failure flag.
-- Ephemeral: inlined into each model as a CTE, so it creates nothing in the database.
select
    e.id,
    e.workflow_id,
    e.project_id,
    e.status,
    e.task_queue,
    e.started_at,
    e.closed_at,
    e.duration_ms,
    e.updated_at,
    e.status in {{ wfmon_failure_statuses() }} as is_failure
from {{ source('wfmon', 'workflow_executions') }} e
