-- The executions of each failure group: one row per (execution, node, error fingerprint)
-- with that execution's failures in the group and its latest one. failure_group_days adds
-- a day up from these rows (migrations/0630 says why this table exists).
--
-- A failure is a component execution whose final status counts as a failure
-- (wfmon_failure_statuses: failed or timed out); its type is the failure type of its last
-- attempt (falling back to wfmon's error category). Its fingerprint is the SQL function
-- wfmon_error_fingerprint (migrations/0410), the one definition. Only executions started by
-- the workflow's owner are grouped: the groups are readable by that owner only, and an
-- error message is execution data (public workflows never share it).
--
-- Incremental: the pre-hook deletes the rows of every execution changed since the last
-- build, and the model appends their rows again, in the same transaction. So an execution
-- whose failures changed (or vanished) on a re-sync is never counted twice or kept stale.
{{ config(
    incremental_strategy='append',
    pre_hook="{{ wfmon_failures_forget_changed_executions('failure_group_executions') }}",
    post_hook="{{ wfmon_record_failures_build('failure_group_executions') }}",
) }}

{%- set watermark = wfmon_failures_watermark('failure_group_executions') %}

with
owned as (
    select x.id, x.workflow_id, x.project_id, x.started_at,
           x.temporal_namespace, x.temporal_workflow_id, x.temporal_run_id
    from {{ wfmon_failures_changed_executions(watermark) }} x
    join {{ source('wfmon_accounts', 'workflows') }} w
      on w.id = x.workflow_id and w.created_by = x.created_by
),

failures as (
    select
        o.workflow_id,
        o.project_id,
        {{ wfmon_utc_day('o.started_at') }} as day,
        o.id as execution_id,
        c.id as component_execution_id,
        c.node_id,
        coalesce(c.component_name, c.activity_type, c.node_id) as component_name,
        coalesce(a.failure_type, c.error_type) as error_type,
        c.error_message,
        c.retry_count,
        c.is_expected_retry,
        coalesce(c.completed_at, c.started_at, o.started_at) as failed_at,
        wfmon_error_fingerprint(coalesce(a.failure_type, c.error_type), c.error_message)
            as fingerprint
    from owned o
    {% if watermark is not none -%}
    -- Few executions: an index lookup per execution (OFFSET 0 keeps PostgreSQL from
    -- flattening it into a hash join over the whole table, as wfmon_join_components does).
    cross join lateral (
        select * from {{ source('wfmon', 'component_executions') }} c0
        where c0.workflow_execution_id = o.id and c0.status in {{ wfmon_failure_statuses() }}
        offset 0
    ) c
    {%- else -%}
    join {{ source('wfmon', 'component_executions') }} c on c.workflow_execution_id = o.id
    {%- endif %}
    -- The failure's own type (the component's error_type is wfmon's category, e.g.
    -- retry_exhausted) is on the attempt the worker recorded for the last attempt.
    {% if watermark is not none -%}
    -- An index lookup per failure as well: joined, PostgreSQL hashed all 200,000 attempts
    -- of the benchmark for ~2,400 failures (130 of the 220 ms of an incremental build).
    left join lateral (
        select a0.failure_type
        from {{ source('wfmon_accounts', 'component_execution_attempts') }} a0
        where a0.temporal_namespace = o.temporal_namespace
          and a0.temporal_workflow_id = o.temporal_workflow_id
          and a0.temporal_run_id = o.temporal_run_id
          and a0.activity_id = coalesce(c.temporal_activity_id, c.node_id)
          and a0.attempt = c.temporal_attempt
        offset 0
    ) a on true
    {%- else -%}
    left join {{ source('wfmon_accounts', 'component_execution_attempts') }} a
      on a.temporal_namespace = o.temporal_namespace
     and a.temporal_workflow_id = o.temporal_workflow_id
     and a.temporal_run_id = o.temporal_run_id
     and a.activity_id = coalesce(c.temporal_activity_id, c.node_id)
     and a.attempt = c.temporal_attempt
    {%- endif %}
    where c.status in {{ wfmon_failure_statuses() }}
),

ranked as (
    select
        f.*,
        row_number() over (
            partition by f.execution_id, f.node_id, f.fingerprint
            order by f.failed_at desc, f.component_execution_id desc
        ) as recency
    from failures f
)

select
    execution_id,
    node_id,
    fingerprint,
    workflow_id,
    project_id,
    day,
    max(component_name) filter (where recency = 1) as component_name,
    max(error_type) filter (where recency = 1) as failure_type,
    count(*)::integer as failures,
    count(*) filter (where retry_count > 0)::integer as retried_failures,
    count(*) filter (where retry_count > 0 and is_expected_retry)::integer
        as expected_retry_failures,
    min(failed_at) as first_seen,
    max(failed_at) as last_seen,
    (max(component_execution_id::text) filter (where recency = 1))::uuid
        as latest_component_execution_id,
    left(max(error_message) filter (where recency = 1), 2000) as latest_message
from ranked
group by execution_id, node_id, fingerprint, workflow_id, project_id, day
