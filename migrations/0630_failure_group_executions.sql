-- The executions of each failure group (issue 12): one row per (execution, node, error
-- fingerprint), written by the dbt model failure_group_executions.
--
-- Measured on the failure-groups benchmark (50,000 executions, 80,000 failures;
-- docs/user-guide/failures-and-attention.md, "Speed"): an incremental build recomputed the
-- whole (workflow, day) of every changed execution from the component and attempt rows,
-- fingerprint included (~17 µs a failure), because a day's distinct executions cannot be
-- added up. At 14:00 UTC that was ~1,400 executions for ~380 new ones: the SELECT took
-- 117-200 ms. With this table an incremental build fingerprints only the changed
-- executions' failures, and a day is re-added from their compact rows (one per execution
-- and group, so counting executions is counting rows): 24 ms for the same day.
--
-- Derived data, like failure_group_days: only wfmon_system reads and writes it (the pages
-- read failure_group_days and failure_groups). No foreign keys: each changed execution's
-- rows are deleted and rewritten by the model, and the nightly full recompute rewrites
-- them all, which removes the rows of deleted executions and workflows.

CREATE TABLE failure_group_executions (
    execution_id                  uuid NOT NULL,
    node_id                       text NOT NULL,
    fingerprint                   text NOT NULL,
    workflow_id                   uuid NOT NULL,
    project_id                    uuid NOT NULL,
    day                           date NOT NULL,
    component_name                text,
    failure_type                  text,
    failures                      integer NOT NULL CHECK (failures > 0),
    retried_failures              integer NOT NULL DEFAULT 0 CHECK (retried_failures >= 0),
    expected_retry_failures       integer NOT NULL DEFAULT 0 CHECK (expected_retry_failures >= 0),
    first_seen                    timestamptz NOT NULL,
    last_seen                     timestamptz NOT NULL,
    latest_component_execution_id uuid,
    latest_message                text,
    PRIMARY KEY (execution_id, node_id, fingerprint)
);
-- An incremental build re-adds a (workflow, day) at a time.
CREATE INDEX failure_group_executions_day_idx ON failure_group_executions (workflow_id, day);

ALTER TABLE failure_group_executions ENABLE ROW LEVEL SECURITY;
ALTER TABLE failure_group_executions FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, DELETE ON failure_group_executions TO wfmon_system;
CREATE POLICY failure_group_executions_system ON failure_group_executions FOR ALL
    TO wfmon_system USING (true) WITH CHECK (true);

ALTER TABLE failure_group_builds DROP CONSTRAINT failure_group_builds_model_check;
ALTER TABLE failure_group_builds ADD CONSTRAINT failure_group_builds_model_check
    CHECK (model IN ('failure_group_executions', 'failure_group_days', 'failure_groups'));
