-- Live push (issue 13): every write of an execution's synced rows tells the web apps which
-- execution changed, through NOTIFY on one channel, so open pages refetch instead of polling.
--
-- Statement-level AFTER triggers on workflow_executions, component_executions and
-- component_execution_attempts send one notification per execution a statement touched,
-- whoever the writer is (the sync transaction, the worker's attempt sink, a user recording
-- a run). PostgreSQL delivers notifications at COMMIT only (a rolled-back sync tells
-- nobody) and drops duplicates within a transaction: the payload is the same whichever
-- table fired, so one sync of one execution is one notification.
--
-- The payload holds ids only, never row contents: the execution, its project, its
-- workflow and its owner (users.id, what the read policies compare). PostgreSQL lets any
-- role that can connect LISTEN on any channel, so nothing else may ever go in it. The web app filters by owner and by the page's
-- execution / workflow / project, and the page then refetches through the API under the
-- caller's row-level security (wfmon.api.live, docs/user-guide/live-view.md).
--
-- Cost: the triggers read the transition tables the search triggers (0400) already
-- capture; bench/bench_live.py measures a sync write with and without them.

CREATE FUNCTION public.wfmon_live_channel() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'wfmon_live'::text $$;

CREATE FUNCTION public.wfmon_live_payload(execution uuid, project uuid, workflow uuid, owner uuid)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT json_build_object('e', execution, 'p', project, 'w', workflow, 'u', owner)::text $$;

-- Executions: new rows, deleted rows, and updates that change what a page shows (a lease
-- taken or renewed changes nothing visible and tells nobody).
CREATE FUNCTION public.wfmon_live_from_executions() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify(wfmon_live_channel(),
                          wfmon_live_payload(n.id, n.project_id, n.workflow_id, n.created_by))
        FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM pg_notify(wfmon_live_channel(),
                          wfmon_live_payload(n.id, n.project_id, n.workflow_id, n.created_by))
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (n.status, n.closed_at, n.duration_ms, n.error_message, n.history_synced_at,
               n.history_sync_status, n.history_sync_error, n.history_event_count,
               n.workflow_id, n.project_id)
              IS DISTINCT FROM
              (o.status, o.closed_at, o.duration_ms, o.error_message, o.history_synced_at,
               o.history_sync_status, o.history_sync_error, o.history_event_count,
               o.workflow_id, o.project_id);
    ELSE
        PERFORM pg_notify(wfmon_live_channel(),
                          wfmon_live_payload(o.id, o.project_id, o.workflow_id, o.created_by))
        FROM old_rows o;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER workflow_executions_live_insert AFTER INSERT ON workflow_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_live_from_executions();
CREATE TRIGGER workflow_executions_live_update AFTER UPDATE ON workflow_executions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_live_from_executions();
CREATE TRIGGER workflow_executions_live_delete AFTER DELETE ON workflow_executions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_live_from_executions();

-- Component rows: the executions they belong to (a deleted execution's cascade finds no
-- execution row and tells nothing more: the execution's own delete did).
CREATE FUNCTION public.wfmon_live_from_components() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify(wfmon_live_channel(),
                          wfmon_live_payload(e.id, e.project_id, e.workflow_id, e.created_by))
        FROM workflow_executions e
        WHERE e.id IN (SELECT DISTINCT workflow_execution_id FROM old_rows);
    ELSE
        PERFORM pg_notify(wfmon_live_channel(),
                          wfmon_live_payload(e.id, e.project_id, e.workflow_id, e.created_by))
        FROM workflow_executions e
        WHERE e.id IN (SELECT DISTINCT workflow_execution_id FROM new_rows);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER component_executions_live_insert AFTER INSERT ON component_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_live_from_components();
CREATE TRIGGER component_executions_live_update AFTER UPDATE ON component_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_live_from_components();
CREATE TRIGGER component_executions_live_delete AFTER DELETE ON component_executions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_live_from_components();

-- Attempts (written by the worker as attempts start and end, possibly before the
-- execution row exists: then nobody is told, and the execution's insert tells). A writer
-- that may read no execution (an insert-only attempt writer) tells nobody either: the
-- execution's next sync does.
CREATE FUNCTION public.wfmon_live_from_attempts() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    IF NOT has_table_privilege('public.workflow_executions', 'SELECT') THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify(wfmon_live_channel(),
                      wfmon_live_payload(e.id, e.project_id, e.workflow_id, e.created_by))
    FROM workflow_executions e
    JOIN (SELECT DISTINCT temporal_namespace, temporal_workflow_id, temporal_run_id
          FROM new_rows) n
      ON e.temporal_namespace = n.temporal_namespace
     AND e.temporal_workflow_id = n.temporal_workflow_id
     AND e.temporal_run_id = n.temporal_run_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER component_execution_attempts_live_insert
    AFTER INSERT ON component_execution_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_live_from_attempts();
CREATE TRIGGER component_execution_attempts_live_update
    AFTER UPDATE ON component_execution_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_live_from_attempts();
