-- Search refresh at the cost of one walk per sync (issue 15, after issue 12's 0400-0402).
--
-- Measured before this migration (docs/architecture/search.md): the search triggers made a
-- sync's write ~8x more expensive in PostgreSQL CPU (20 ms against 2.5 ms without them,
-- 20-component executions), for two reasons:
--
-- 1. A sync writes the execution row (insert or update), the component rows, then marks
--    the row synced: three statements, each firing 0400's statement trigger, so the
--    documents and path terms of each execution were rebuilt three times per sync (the
--    first time from the component rows about to be replaced).
-- 2. The path-term walk (wfmon_json_leaf_bodies) ran two function scans (jsonb_each,
--    jsonb_array_elements) for every leaf too, and called wfmon_json_term_value, which
--    PostgreSQL could not inline because it was STRICT: ~3x the cost of the walk below.
--
-- So:
-- - wfmon_json_term_value and wfmon_search_term are no longer STRICT. Their result is the
--   same (NULL in, NULL out: every branch of the CASE / md5 is NULL for NULL), but a
--   non-strict one-expression SQL function is inlined into its caller.
-- - wfmon_json_leaf_bodies returns the same set, walking into objects and arrays only.
-- - A writer that makes several statements in one transaction (the sync) may ask for the
--   refresh at commit instead of after each statement: `set_config('wfmon.search_refresh',
--   'commit', true)` (wfmon.db.sync does it). The statement triggers then queue the touched
--   executions in the transaction-local setting `wfmon.search_pending`, and a deferred
--   constraint trigger refreshes all of them once, at commit, in the same transaction. Any
--   other writer (no setting) still gets the refresh after each statement, so it reads its
--   own writes in the search tables before committing, as before.
--
-- Why the queue is a setting and the flush a WHEN-filtered constraint trigger, not a
-- queue table: a transaction-local setting costs no row writes and is rolled back with a
-- subtransaction, like the trigger events queued in it. A constraint trigger's WHEN is
-- evaluated when the row is written (not at commit): only rows written while nothing is
-- pending queue a flush, i.e. the first write statement of the transaction (and the first
-- after a flush), so a sync queues one or two flush events, not one per component row.
-- Every statement that leaves ids pending was preceded by (or is) one that queued a flush.

CREATE OR REPLACE FUNCTION public.wfmon_json_term_value(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE jsonb_typeof(v)
    WHEN 'string' THEN 's' || (v #>> '{}')
    WHEN 'number' THEN 'n' || trim_scale((v #>> '{}')::numeric)::text
    WHEN 'boolean' THEN 'b' || (v #>> '{}')
    WHEN 'null' THEN 'z'
END;

CREATE OR REPLACE FUNCTION public.wfmon_search_term(kind text, body text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ('x' || substr(md5(kind || ':' || body), 1, 16))::bit(64)::bigint;

-- The distinct `path=value` bodies of the scalar leaves of a JSON array of documents
-- (0401's definition, same result): only objects and arrays are expanded, each node's
-- type is computed once.
CREATE OR REPLACE FUNCTION public.wfmon_json_leaf_bodies(docs jsonb) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    WITH RECURSIVE walk (path, v, t) AS (
        SELECT NULL::text, d, jsonb_typeof(d)
        FROM (SELECT DISTINCT d FROM jsonb_array_elements(docs) d) x
        UNION ALL
        SELECT c.path, c.value, jsonb_typeof(c.value)
        FROM walk w
        CROSS JOIN LATERAL (
            SELECT CASE WHEN w.path IS NULL THEN o.key ELSE w.path || '.' || o.key END, o.value
            FROM jsonb_each(CASE WHEN w.t = 'object' THEN w.v END) o
            UNION ALL
            SELECT CASE WHEN w.path IS NULL THEN '*' ELSE w.path || '.*' END, a.value
            FROM jsonb_array_elements(CASE WHEN w.t = 'array' THEN w.v END) a
        ) c (path, value)
        WHERE w.t IN ('object', 'array')
    )
    SELECT DISTINCT path || '=' || public.wfmon_json_term_value(v)
    FROM walk
    WHERE path IS NOT NULL AND t NOT IN ('object', 'array')
$$;

-- Refresh these executions' documents now, or (the writer asked for 'commit') queue them
-- for the flush at commit.
CREATE FUNCTION public.wfmon_search_documents_touched(ids uuid[]) RETURNS void
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    pending text;
BEGIN
    IF cardinality(ids) IS NOT DISTINCT FROM 0 OR ids IS NULL THEN
        RETURN;
    END IF;
    IF current_setting('wfmon.search_refresh', true) IS DISTINCT FROM 'commit' THEN
        PERFORM wfmon_refresh_search_documents(ids);
        RETURN;
    END IF;
    pending := coalesce(current_setting('wfmon.search_pending', true), '');
    PERFORM set_config('wfmon.search_pending',
        CASE WHEN pending = '' THEN '' ELSE pending || ',' END || array_to_string(ids, ','),
        true);
END
$$;

-- The flush: refresh every queued execution once. Later flush events of the same
-- transaction find nothing queued.
CREATE FUNCTION public.wfmon_search_documents_flush() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    pending text := coalesce(current_setting('wfmon.search_pending', true), '');
BEGIN
    IF pending <> '' THEN
        PERFORM set_config('wfmon.search_pending', '', true);
        PERFORM wfmon_refresh_search_documents(
            ARRAY(SELECT DISTINCT x FROM unnest(string_to_array(pending, ',')::uuid[]) x));
    END IF;
    RETURN NULL;
END
$$;

-- 0400's trigger functions, queueing through wfmon_search_documents_touched.
CREATE OR REPLACE FUNCTION public.wfmon_search_documents_from_executions() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM wfmon_search_documents_touched(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.wfmon_search_documents_from_changed_executions()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    -- Only rows whose searched columns changed or that were just synced (a lease renewal
    -- rebuilds nothing).
    PERFORM wfmon_search_documents_touched(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.error_message IS DISTINCT FROM o.error_message
           OR n.input IS DISTINCT FROM o.input
           OR n.output IS DISTINCT FROM o.output
           OR n.history_synced_at IS DISTINCT FROM o.history_synced_at));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.wfmon_search_documents_from_components() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM wfmon_search_documents_touched(
        ARRAY(SELECT DISTINCT workflow_execution_id FROM new_rows));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.wfmon_search_documents_from_attempts() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM wfmon_search_documents_touched(ARRAY(
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

-- The flush events: queued only in 'commit' mode and only while nothing is pending (see
-- the top of this file), fired at commit.
CREATE CONSTRAINT TRIGGER workflow_executions_search_flush
    AFTER INSERT OR UPDATE ON workflow_executions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (current_setting('wfmon.search_refresh', true) = 'commit'
          AND coalesce(current_setting('wfmon.search_pending', true), '') = '')
    EXECUTE FUNCTION wfmon_search_documents_flush();
CREATE CONSTRAINT TRIGGER component_executions_search_flush
    AFTER INSERT OR UPDATE ON component_executions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (current_setting('wfmon.search_refresh', true) = 'commit'
          AND coalesce(current_setting('wfmon.search_pending', true), '') = '')
    EXECUTE FUNCTION wfmon_search_documents_flush();
CREATE CONSTRAINT TRIGGER component_execution_attempts_search_flush
    AFTER INSERT OR UPDATE ON component_execution_attempts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (current_setting('wfmon.search_refresh', true) = 'commit'
          AND coalesce(current_setting('wfmon.search_pending', true), '') = '')
    EXECUTE FUNCTION wfmon_search_documents_flush();

-- 0402's refresh, with one change: a document whose input and output values are those
-- already stored keeps its term array instead of walking them again (a re-sync of an
-- execution whose payloads did not change: every live re-sync of a running execution
-- whose components have not moved, every manual re-sync), and an unchanged document is
-- not rewritten. Same documents, same terms.
CREATE OR REPLACE FUNCTION public.wfmon_refresh_search_documents(ids uuid[]) RETURNS void
LANGUAGE sql
SET search_path = public, pg_temp
AS $$
    WITH built AS (
        SELECT e.id, e.created_by,
               lower(concat_ws(E'\n', e.error_message, c.errors, a.errors)) AS errors,
               lower(concat_ws(E'\n', e.input::text, c.inputs)) AS inputs,
               lower(concat_ws(E'\n', e.output::text, c.outputs)) AS outputs,
               CASE WHEN e.input IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(e.input) END
                   || coalesce(c.input_values, '[]'::jsonb) AS input_values,
               CASE WHEN e.output IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(e.output) END
                   || coalesce(c.output_values, '[]'::jsonb) AS output_values
        FROM workflow_executions e
        LEFT JOIN LATERAL (
            SELECT string_agg(concat_ws(' ', ce.error_type, ce.error_message), E'\n')
                       FILTER (WHERE ce.error_type IS NOT NULL OR ce.error_message IS NOT NULL)
                       AS errors,
                   string_agg(ce.input_data::text, E'\n') AS inputs,
                   string_agg(ce.output_data::text, E'\n') AS outputs,
                   jsonb_agg(ce.input_data) FILTER (WHERE ce.input_data IS NOT NULL)
                       AS input_values,
                   jsonb_agg(ce.output_data) FILTER (WHERE ce.output_data IS NOT NULL)
                       AS output_values
            FROM component_executions ce WHERE ce.workflow_execution_id = e.id
        ) c ON true
        LEFT JOIN LATERAL (
            SELECT string_agg(concat_ws(' ', at.failure_type, at.failure_message), E'\n')
                       AS errors
            FROM component_execution_attempts at
            WHERE at.temporal_namespace = e.temporal_namespace
              AND at.temporal_workflow_id = e.temporal_workflow_id
              AND at.temporal_run_id = e.temporal_run_id
              AND (at.failure_type IS NOT NULL OR at.failure_message IS NOT NULL)
        ) a ON true
        WHERE e.id = ANY (ids)
    ),
    previous AS (
        SELECT d.execution_id, d.created_by, d.terms, d.input_values, d.output_values
        FROM execution_search_documents d WHERE d.execution_id = ANY (ids)
    ),
    documents AS (
        SELECT b.*,
               CASE WHEN p.terms IS NOT NULL AND p.input_values = b.input_values
                         AND p.output_values = b.output_values
                    THEN p.terms
                    ELSE ARRAY(SELECT DISTINCT t FROM (
                        SELECT wfmon_search_term('i', x)
                        FROM wfmon_json_leaf_bodies(b.input_values) x
                        UNION ALL
                        SELECT wfmon_search_term('o', x)
                        FROM wfmon_json_leaf_bodies(b.output_values) x
                    ) y (t) ORDER BY t)
               END AS terms
        FROM built b LEFT JOIN previous p ON p.execution_id = b.id
    ),
    upserted AS (
        INSERT INTO execution_search_documents AS d
            (execution_id, created_by, errors, inputs, outputs, input_values, output_values,
             terms, updated_at)
        SELECT id, created_by, errors, inputs, outputs, input_values, output_values, terms, now()
        FROM documents
        ON CONFLICT (execution_id) DO UPDATE SET
            created_by = EXCLUDED.created_by,
            errors = EXCLUDED.errors,
            inputs = EXCLUDED.inputs,
            outputs = EXCLUDED.outputs,
            input_values = EXCLUDED.input_values,
            output_values = EXCLUDED.output_values,
            terms = EXCLUDED.terms,
            updated_at = EXCLUDED.updated_at
        -- An unchanged document is not rewritten (updated_at: when it last changed).
        WHERE (d.created_by, d.errors, d.inputs, d.outputs, d.input_values, d.output_values,
               d.terms)
              IS DISTINCT FROM (EXCLUDED.created_by, EXCLUDED.errors, EXCLUDED.inputs,
                                EXCLUDED.outputs, EXCLUDED.input_values,
                                EXCLUDED.output_values, EXCLUDED.terms)
    ),
    old_terms AS (
        SELECT p.created_by, t.term, p.execution_id
        FROM previous p CROSS JOIN LATERAL unnest(p.terms) t (term)
    ),
    new_terms AS (
        SELECT d.created_by, t.term, d.id AS execution_id
        FROM documents d CROSS JOIN LATERAL unnest(d.terms) t (term)
    ),
    removed AS (
        DELETE FROM execution_search_terms s
        USING (SELECT * FROM old_terms EXCEPT ALL SELECT * FROM new_terms) g
        WHERE s.created_by = g.created_by AND s.term = g.term
          AND s.execution_id = g.execution_id
    )
    INSERT INTO execution_search_terms (created_by, term, execution_id)
    SELECT * FROM new_terms EXCEPT ALL SELECT * FROM old_terms
    ON CONFLICT DO NOTHING
$$;
