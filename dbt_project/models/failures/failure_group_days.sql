-- Failures per (workflow, node, error fingerprint, UTC day of the execution's start): the
-- sparkline, added up from failure_group_executions (one row per execution and group, so
-- a day's distinct executions are its rows).
--
-- Incremental: every (workflow, day) holding an execution changed since the last build is
-- added up again from its executions' rows (failure_group_executions has rewritten the
-- changed ones earlier in the same build), then only the rows that differ from the table
-- are MERGEd. So a row's updated_at moves only when its figures changed, and
-- failure_groups (which recomputes the groups with a day updated since its last build)
-- touches only the groups the new failures are in. Days are the executions' start days,
-- which never change, so a day's executions are counted in exactly one row.
{{ config(
    unique_key=['workflow_id', 'node_id', 'fingerprint', 'day'],
    post_hook="{{ wfmon_record_failures_build('failure_group_days') }}",
) }}

{%- set watermark = wfmon_failures_watermark('failure_group_days') %}

with
{% if watermark is not none -%}
affected as (
    select distinct e.workflow_id, {{ wfmon_utc_day('e.started_at') }} as day
    from {{ wfmon_failures_changed_executions(watermark) }} e
),

-- An index range scan per affected day (OFFSET 0: otherwise the planner may hash the
-- whole table).
executions as (
    select x.*
    from affected a
    cross join lateral (
        select * from {{ ref('failure_group_executions') }} x0
        where x0.workflow_id = a.workflow_id and x0.day = a.day
        offset 0
    ) x
),
{%- else -%}
executions as (
    select * from {{ ref('failure_group_executions') }}
),
{%- endif %}

ranked as (
    select
        x.*,
        row_number() over (
            partition by x.workflow_id, x.node_id, x.fingerprint, x.day
            order by x.last_seen desc, x.latest_component_execution_id desc
        ) as recency
    from executions x
),

computed as (
select
    workflow_id,
    node_id,
    fingerprint,
    day,
    project_id,
    max(component_name) filter (where recency = 1) as component_name,
    max(failure_type) filter (where recency = 1) as failure_type,
    sum(failures)::integer as failures,
    count(*)::integer as executions,
    sum(retried_failures)::integer as retried_failures,
    sum(expected_retry_failures)::integer as expected_retry_failures,
    min(first_seen) as first_seen,
    max(last_seen) as last_seen,
    (max(execution_id::text) filter (where recency = 1))::uuid as latest_execution_id,
    (max(latest_component_execution_id::text) filter (where recency = 1))::uuid
        as latest_component_execution_id,
    max(latest_message) filter (where recency = 1) as latest_message,
    now() as updated_at
from ranked
group by workflow_id, node_id, fingerprint, day, project_id
)

select n.*
from computed n
{{ wfmon_failures_only_changed(['workflow_id', 'node_id', 'fingerprint', 'day']) }}
