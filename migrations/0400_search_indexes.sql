-- Search (issue 12): what wfmon.db.search reads, kept current by the sync's own writes.
--
-- Why not trigram / jsonb_path_ops GIN indexes on the synced tables: searches run as
-- wfmon_user under row-level security, and PostgreSQL only uses an index for a condition
-- that is LEAKPROOF once a table has a policy (restriction_is_securely_promotable). ILIKE
-- (texticlike), jsonb @> (jsonb_contains), tsvector @@ (ts_match_vq) and every function
-- over a column are not leakproof, and only a superuser may mark them so. Measured on
-- PostgreSQL 18: with a gin_trgm_ops index on component_executions.error_message,
-- wfmon_system's ILIKE uses it, wfmon_user's is a sequential scan of every component row
-- (docs/architecture/search.md). Such indexes would cost every sync write and serve no
-- user, so there are none.
--
-- Instead: one search document per execution (its error texts, inputs and outputs,
-- gathered from the execution, its component rows and its retry attempts), so a text or
-- JSON search reads one short row per visible execution instead of every component and
-- attempt row; plus btree indexes for the conditions that ARE leakproof (equality on node
-- and component, the caller's executions by start time).

-- The caller's executions newest first: the RLS condition (created_by = caller) and the
-- default sort in one index, so a page can stop early.
CREATE INDEX workflow_executions_owner_started_idx
    ON workflow_executions (created_by, started_at DESC, id DESC);
-- component:C (node:N has component_executions_node_idx).
CREATE INDEX component_executions_component_name_idx ON component_executions (component_name);

CREATE TABLE execution_search_documents (
    execution_id  uuid PRIMARY KEY REFERENCES workflow_executions (id) ON DELETE CASCADE,
    -- The execution's owner (an execution is never re-owned), so the read policy is a
    -- column comparison instead of a probe of workflow_executions per document.
    created_by    uuid NOT NULL,
    -- Lower-cased text, one line per source: the execution's error, each component's
    -- "error_type error_message", each failed attempt's "failure_type failure_message".
    errors        text NOT NULL DEFAULT '',
    -- Lower-cased JSON text of the execution's input and every component's input (outputs:
    -- the execution's result and every component's output), one line each.
    inputs        text NOT NULL DEFAULT '',
    outputs       text NOT NULL DEFAULT '',
    -- The same values as JSON arrays, for path equality by containment (@>).
    input_values  jsonb NOT NULL DEFAULT '[]'::jsonb,
    output_values jsonb NOT NULL DEFAULT '[]'::jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE execution_search_documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE execution_search_documents FORCE ROW LEVEL SECURITY;
GRANT SELECT ON execution_search_documents TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON execution_search_documents TO wfmon_system;
-- Read by the execution's owner (the rule of workflow_executions).
CREATE POLICY execution_search_documents_owner_read ON execution_search_documents
    FOR SELECT TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY execution_search_documents_system ON execution_search_documents
    FOR ALL TO wfmon_system USING (true) WITH CHECK (true);

-- (Re)build the documents of these executions from their current rows. Runs as the caller
-- (the sync's wfmon_system), inside the sync's transaction.
CREATE FUNCTION public.wfmon_refresh_search_documents(ids uuid[]) RETURNS void
LANGUAGE sql
SET search_path = public, pg_temp
AS $$
    INSERT INTO execution_search_documents AS d
        (execution_id, created_by, errors, inputs, outputs, input_values, output_values,
         updated_at)
    SELECT e.id, e.created_by,
           lower(concat_ws(E'\n', e.error_message, c.errors, a.errors)),
           lower(concat_ws(E'\n', e.input::text, c.inputs)),
           lower(concat_ws(E'\n', e.output::text, c.outputs)),
           CASE WHEN e.input IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(e.input) END
               || coalesce(c.input_values, '[]'::jsonb),
           CASE WHEN e.output IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(e.output) END
               || coalesce(c.output_values, '[]'::jsonb),
           now()
    FROM workflow_executions e
    LEFT JOIN LATERAL (
        SELECT string_agg(concat_ws(' ', ce.error_type, ce.error_message), E'\n')
                   FILTER (WHERE ce.error_type IS NOT NULL OR ce.error_message IS NOT NULL)
                   AS errors,
               string_agg(ce.input_data::text, E'\n') AS inputs,
               string_agg(ce.output_data::text, E'\n') AS outputs,
               jsonb_agg(ce.input_data) FILTER (WHERE ce.input_data IS NOT NULL) AS input_values,
               jsonb_agg(ce.output_data) FILTER (WHERE ce.output_data IS NOT NULL)
                   AS output_values
        FROM component_executions ce WHERE ce.workflow_execution_id = e.id
    ) c ON true
    LEFT JOIN LATERAL (
        SELECT string_agg(concat_ws(' ', at.failure_type, at.failure_message), E'\n') AS errors
        FROM component_execution_attempts at
        WHERE at.temporal_namespace = e.temporal_namespace
          AND at.temporal_workflow_id = e.temporal_workflow_id
          AND at.temporal_run_id = e.temporal_run_id
          AND (at.failure_type IS NOT NULL OR at.failure_message IS NOT NULL)
    ) a ON true
    WHERE e.id = ANY (ids)
    ON CONFLICT (execution_id) DO UPDATE SET
        created_by = EXCLUDED.created_by,
        errors = EXCLUDED.errors,
        inputs = EXCLUDED.inputs,
        outputs = EXCLUDED.outputs,
        input_values = EXCLUDED.input_values,
        output_values = EXCLUDED.output_values,
        updated_at = EXCLUDED.updated_at
$$;

-- Executions: a new row, or a change of what the document holds. mark_history_synced
-- (which ends every sync, after replace_component_executions) sets history_synced_at, so
-- a sync that removed component rows also rebuilds the document.
CREATE FUNCTION public.wfmon_search_documents_from_executions() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM wfmon_refresh_search_documents(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END
$$;
CREATE TRIGGER workflow_executions_search_insert AFTER INSERT ON workflow_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_search_documents_from_executions();
CREATE FUNCTION public.wfmon_search_documents_from_changed_executions() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    -- Only rows whose searched columns changed or that were just synced (a lease renewal
    -- rebuilds nothing).
    PERFORM wfmon_refresh_search_documents(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.error_message IS DISTINCT FROM o.error_message
           OR n.input IS DISTINCT FROM o.input
           OR n.output IS DISTINCT FROM o.output
           OR n.history_synced_at IS DISTINCT FROM o.history_synced_at));
    RETURN NULL;
END
$$;
CREATE TRIGGER workflow_executions_search_update AFTER UPDATE ON workflow_executions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_search_documents_from_changed_executions();

-- Component rows: the executions they belong to (one statement per sync: the multi-row
-- insert of replace_component_executions).
CREATE FUNCTION public.wfmon_search_documents_from_components() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM wfmon_refresh_search_documents(
        ARRAY(SELECT DISTINCT workflow_execution_id FROM new_rows));
    RETURN NULL;
END
$$;
CREATE TRIGGER component_executions_search_insert AFTER INSERT ON component_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_search_documents_from_components();
CREATE TRIGGER component_executions_search_update AFTER UPDATE ON component_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_search_documents_from_components();

-- Attempts (written by the worker, possibly before the execution row exists: then there is
-- no document yet, and the execution's insert builds it with these attempts).
CREATE FUNCTION public.wfmon_search_documents_from_attempts() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM wfmon_refresh_search_documents(ARRAY(
        SELECT DISTINCT e.id
        FROM new_rows n
        JOIN workflow_executions e
          ON e.temporal_namespace = n.temporal_namespace
         AND e.temporal_workflow_id = n.temporal_workflow_id
         AND e.temporal_run_id = n.temporal_run_id
        WHERE n.failure_type IS NOT NULL OR n.failure_message IS NOT NULL));
    RETURN NULL;
END
$$;
CREATE TRIGGER component_execution_attempts_search_insert
    AFTER INSERT ON component_execution_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_search_documents_from_attempts();
CREATE TRIGGER component_execution_attempts_search_update
    AFTER UPDATE ON component_execution_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wfmon_search_documents_from_attempts();

-- Executions synced before this migration get their document on their next sync, or at
-- once from wfmon.db.search.refresh_search_documents (as wfmon_system): the owner running
-- this migration sees no rows (FORCE ROW LEVEL SECURITY, no policy for it).
GRANT EXECUTE ON FUNCTION wfmon_refresh_search_documents(uuid[]) TO wfmon_system;
