-- Live push for attempts written by an insert-only attempt writer (wfmon.attempts.interceptor
-- in users' own workers, and wfmon's own worker): until now they told no one until the
-- execution's next sync, because such a writer may read no execution (0550) and so cannot
-- name the execution's ids (0520's trigger skipped it).
--
-- Now the trigger names the run by its Temporal ids (namespace, workflow id, run id), which
-- the writer wrote itself: payload {"r": [namespace, workflow_id, run_id]}. The web app
-- matches them against the execution pages open on that run (wfmon.api.live), which then
-- refetch under their user's row-level security as always. The notification is sent by a
-- SECURITY DEFINER function, so the writer still never learns the channel's secret name
-- (0525) and hears nothing; all it can do is make the pages open on a run it names refetch,
-- which its inserts already could.

CREATE FUNCTION public.wfmon_live_attempts_recorded(namespace text, workflow_id text, run_id text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT pg_notify(wfmon_live_channel(),
                     json_build_object('r', json_build_array(namespace, workflow_id, run_id))::text)
$$;
REVOKE EXECUTE ON FUNCTION public.wfmon_live_attempts_recorded(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.wfmon_live_attempts_recorded(text, text, text)
    TO wfmon_attempt_writer;

CREATE OR REPLACE FUNCTION public.wfmon_live_from_attempts() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    IF NOT has_table_privilege('public.workflow_executions', 'SELECT') THEN
        -- An insert-only writer: name the runs (a batch holds a few; 100 bounds the work).
        PERFORM wfmon_live_attempts_recorded(n.temporal_namespace, n.temporal_workflow_id,
                                             n.temporal_run_id)
        FROM (SELECT DISTINCT temporal_namespace, temporal_workflow_id, temporal_run_id
              FROM new_rows LIMIT 100) n;
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
