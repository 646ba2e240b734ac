-- Attempt rows written by Temporal workers wfmon does not run (wfmon.attempts.interceptor).
--
-- A user's own worker holds a database URL, so that URL must open nothing but the one
-- table it feeds, and only for adding rows:
--   wfmon_attempt_writer  NOLOGIN NOBYPASSRLS, owns nothing: INSERT on
--                         component_execution_attempts, nothing else (no SELECT, so it reads
--                         no one's attempts, failure messages or stack traces; no UPDATE or
--                         DELETE, so it rewrites no recorded attempt)
--   wfmon_recorder        LOGIN role of such workers, NOINHERIT, granted nothing but SET to
--                         wfmon_attempt_writer (the pattern of 0300: after RESET ROLE it can
--                         do nothing at all)
-- wfmon_authenticator may become wfmon_attempt_writer too, so one URL serves wfmon's own
-- worker in the same way. Created NOLOGIN when absent; whoever runs the server gives
-- wfmon_recorder LOGIN and a password (the embedded server does).
--
-- Writers insert with ON CONFLICT DO NOTHING (needs INSERT only): a batch offered again
-- after a lost commit adds nothing. What such a role can still do: add attempt rows for
-- any run id it names (so give its password to workers you trust with the namespace), and
-- learn whether an attempt key is taken (a unique index tells any inserter that).

DO $roles$
DECLARE
    login_role text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wfmon_attempt_writer') THEN
        CREATE ROLE wfmon_attempt_writer NOLOGIN NOINHERIT NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wfmon_recorder') THEN
        CREATE ROLE wfmon_recorder NOLOGIN NOINHERIT NOBYPASSRLS;
    END IF;
    FOREACH login_role IN ARRAY ARRAY['wfmon_recorder', 'wfmon_authenticator'] LOOP
        IF current_setting('server_version_num')::int >= 160000 THEN
            EXECUTE format('GRANT wfmon_attempt_writer TO %I WITH INHERIT FALSE, SET TRUE',
                           login_role);
        ELSIF NOT pg_has_role(login_role, 'wfmon_attempt_writer', 'MEMBER') THEN
            EXECUTE format('GRANT wfmon_attempt_writer TO %I', login_role);
        END IF;
    END LOOP;
END
$roles$;

GRANT INSERT ON component_execution_attempts TO wfmon_attempt_writer;

-- Only finished attempts: the interceptor writes an attempt once, when it has ended.
CREATE POLICY component_execution_attempts_writer_insert ON component_execution_attempts
    FOR INSERT TO wfmon_attempt_writer
    WITH CHECK (outcome <> 'running' AND ended_at IS NOT NULL);

-- The search documents (0400) are refreshed by statement triggers on these inserts, under
-- the inserter's rights, reading workflow_executions. The writer may read no execution, so
-- those triggers skip its statements (a WHEN on the trigger; the functions, 0540's, are
-- left as they are): the execution's next sync builds its document with these attempts
-- (sync rewrites the component rows, whose trigger refreshes the document). 0520's live
-- notification trigger already skips such writers itself.
DROP TRIGGER component_execution_attempts_search_insert ON component_execution_attempts;
CREATE TRIGGER component_execution_attempts_search_insert
    AFTER INSERT ON component_execution_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (has_table_privilege('public.workflow_executions', 'SELECT'))
    EXECUTE FUNCTION wfmon_search_documents_from_attempts();
