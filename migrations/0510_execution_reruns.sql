-- Re-runs (issue 13): "run again with the same input" and "retry from the failed node".
--
-- One row per new run that wfmon started from an execution, linking the two both ways.
-- The new run is named by its Temporal ids, not by its workflow_executions row: that row
-- is written by the sync (after the link, and it may be deleted and written again), and a
-- reset's new run shares its workflow id with the run it came from. Joining on the
-- Temporal ids keeps the link whatever the sync does with the row.
--
-- Written by the execution's owner (the web app runs as wfmon_user) in the same
-- transaction that asked Temporal for the new run; never updated or deleted by users.

CREATE TABLE execution_reruns (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source_execution_id  uuid NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    kind                 text NOT NULL CHECK (kind IN ('run_again', 'retry_from_failed')),
    temporal_namespace   text NOT NULL,
    temporal_workflow_id text NOT NULL,
    temporal_run_id      text NOT NULL,
    -- The definition version the new run runs (a reset runs the source's own).
    definition_version   integer,
    -- retry_from_failed: the earliest failed node and the WorkflowTaskCompleted event the
    -- source run was reset to (the one whose commands scheduled that node).
    failed_node_id       text,
    reset_event_id       bigint CHECK (reset_event_id > 0),
    created_by           uuid NOT NULL REFERENCES users (id),
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'retry_from_failed') = (reset_event_id IS NOT NULL)),
    -- Per owner: a unique violation never tells anyone about another user's runs.
    UNIQUE (created_by, temporal_namespace, temporal_workflow_id, temporal_run_id)
);
-- A failed run is retried from its failed node once: a second reset of the same run would
-- terminate the first retry if it were still running.
CREATE UNIQUE INDEX execution_reruns_one_retry_idx
    ON execution_reruns (source_execution_id) WHERE kind = 'retry_from_failed';
CREATE INDEX execution_reruns_source_idx ON execution_reruns (source_execution_id, created_at);
-- The link back, from the new run's row (by its Temporal ids).
CREATE INDEX execution_reruns_run_idx
    ON execution_reruns (temporal_namespace, temporal_workflow_id, temporal_run_id);

ALTER TABLE execution_reruns ENABLE ROW LEVEL SECURITY;
ALTER TABLE execution_reruns FORCE ROW LEVEL SECURITY;

GRANT SELECT, INSERT ON execution_reruns TO wfmon_user;
GRANT SELECT ON execution_reruns TO wfmon_system;

CREATE POLICY execution_reruns_owner_read ON execution_reruns FOR SELECT TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY execution_reruns_owner_insert ON execution_reruns FOR INSERT TO wfmon_user
    WITH CHECK (created_by = (SELECT wfmon_current_user_id())
                AND wfmon_owns_execution(source_execution_id));
CREATE POLICY execution_reruns_system_read ON execution_reruns FOR SELECT TO wfmon_system
    USING (true);
