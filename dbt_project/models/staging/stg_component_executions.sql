-- Component executions with a component name for every row (the activity type or node id
-- for workflows not built by the builder), a failure flag (wfmon_failure_statuses: a
-- component is never 'terminated', so this is failed or timed out) and the number of
-- attempts that failed.
select
    c.id,
    c.workflow_execution_id,
    c.component_id,
    coalesce(c.component_name, c.activity_type, c.node_id) as component_name,
    c.status,
    c.started_at,
    c.completed_at,
    c.duration_ms,
    c.retry_count,
    c.is_expected_retry,
    c.status in {{ wfmon_failure_statuses() }} as is_failure,
    c.retry_count + case when c.status in {{ wfmon_failure_statuses() }} then 1 else 0 end
        as failed_attempts
from {{ source('wfmon', 'component_executions') }} c
