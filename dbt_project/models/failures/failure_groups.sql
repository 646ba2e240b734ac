-- Failure groups: one row per (workflow, node, error fingerprint) with its totals over all
-- days, the retries before its failures, and its latest example.
--
-- Incremental: the groups with a failure_group_days row changed since this model's last
-- build are recomputed from all their days (a handful of rows each); only the groups whose
-- figures differ from the table are MERGEd (their updated_at is when they last changed,
-- which the new-failure-group alert rule reads).
{{ config(
    unique_key=['workflow_id', 'node_id', 'fingerprint'],
    post_hook="{{ wfmon_record_failures_build('failure_groups') }}",
) }}

{%- set watermark = wfmon_failures_watermark('failure_groups') %}

with affected as (
    select distinct d.workflow_id, d.node_id, d.fingerprint
    from {{ ref('failure_group_days') }} d
    {% if watermark is not none -%}
    where d.updated_at > '{{ watermark }}'::timestamptz
    {%- endif %}
),

days as (
    select d.*
    from {{ ref('failure_group_days') }} d
    join affected a
      on a.workflow_id = d.workflow_id and a.node_id = d.node_id
     and a.fingerprint = d.fingerprint
),

-- One pass over the days: the totals, and the latest example (the day with the newest
-- failure) taken with ordered array_agg. (A join of the totals to a DISTINCT ON of the same
-- days was planned as a nested loop re-sorting every day per group: 0.7 s for 320 groups.)
computed as (
    select
        workflow_id,
        node_id,
        fingerprint,
        max(project_id::text)::uuid as project_id,
        {%- for column in ['component_name', 'failure_type', 'latest_execution_id',
                           'latest_component_execution_id', 'latest_message'] %}
        (array_agg({{ column }} order by last_seen desc, day desc))[1] as {{ column }},
        {%- endfor %}
        sum(failures)::integer as failures,
        sum(executions)::integer as executions,
        sum(retried_failures)::integer as retried_failures,
        sum(expected_retry_failures)::integer as expected_retry_failures,
        min(first_seen) as first_seen,
        max(last_seen) as last_seen,
        now() as updated_at
    from days
    group by workflow_id, node_id, fingerprint
)

select n.*
from computed n
{{ wfmon_failures_only_changed(['workflow_id', 'node_id', 'fingerprint']) }}
