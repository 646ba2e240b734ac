-- Search path terms given by the writer (issue 15, after 0540, 0541 and 0610).
--
-- Measured on the sync benchmark's 20-component executions (docs/architecture/
-- execution-sync.md, "Sixth pass"): a first refresh of an execution's search document cost
-- 5.3-6.3 ms of PostgreSQL CPU, of which the path-term walk and its md5s were 2.2-2.8 ms
-- (the same refresh with the terms given: 3.1-3.6 ms). The sync worker has the same values
-- in hand before it writes them, and computes the same terms in ~0.2-0.3 ms of Python
-- (wfmon.search.terms, checked against these functions by tests/search/test_terms.py).
--
-- So a writer may give the terms: the transaction-local setting `wfmon.search_given_terms`
-- holds entries `execution-id:term,term,...` separated by ';' (terms sorted, distinct), and
-- the next refresh uses an execution's given terms instead of walking its values, then
-- clears the setting (given terms are for the next refresh only). An execution without an
-- entry is refreshed as before. The documents and every other column are built as before.
--
-- The promise a writer makes when it gives terms (wfmon.db.sync.write_synced_execution is
-- the only one): they are the terms of the values the same statement wrote, namely the
-- execution's input (as wfmon_search_input sees it) and output and all its component rows,
-- and it writes none of those values again before the refresh. Nobody else can change them
-- in between: the statement holds the execution row locked until commit (an update, or an
-- insert not yet committed), and a component row of it cannot be inserted by another
-- transaction before then (the foreign key's KEY SHARE lock waits for ours); the rows it
-- inserted are invisible to everyone else.

CREATE OR REPLACE FUNCTION public.wfmon_refresh_search_documents(ids uuid[]) RETURNS void
LANGUAGE plpgsql
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    WITH built AS (
        SELECT e.id, e.created_by,
               lower(concat_ws(E'\n', e.error_message, c.errors, a.errors)) AS errors,
               lower(concat_ws(E'\n', s.input::text, c.inputs)) AS inputs,
               lower(concat_ws(E'\n', e.output::text, c.outputs)) AS outputs,
               CASE WHEN s.input IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(s.input) END
                   || coalesce(c.input_values, '[]'::jsonb) AS input_values,
               CASE WHEN e.output IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(e.output) END
                   || coalesce(c.output_values, '[]'::jsonb) AS output_values
        FROM workflow_executions e
        CROSS JOIN LATERAL (SELECT wfmon_search_input(e.workflow_type, e.input)) s (input)
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
    -- The terms the writer gave (see the top of this file); the last entry of an id wins.
    given AS (
        SELECT DISTINCT ON (g.id) g.id, g.terms
        FROM (
            SELECT split_part(x.entry, ':', 1)::uuid AS id,
                   string_to_array(split_part(x.entry, ':', 2), ',')::bigint[] AS terms, x.n
            FROM unnest(string_to_array(
                     nullif(current_setting('wfmon.search_given_terms', true), ''), ';'))
                 WITH ORDINALITY AS x (entry, n)
        ) g
        WHERE g.id = ANY (ids)
        ORDER BY g.id, g.n DESC
    ),
    documents AS (
        SELECT b.*,
               CASE WHEN g.terms IS NOT NULL THEN g.terms
                    WHEN p.terms IS NOT NULL AND p.input_values = b.input_values
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
        FROM built b
        LEFT JOIN previous p ON p.execution_id = b.id
        LEFT JOIN given g ON g.id = b.id
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
    ON CONFLICT DO NOTHING;

    -- Given terms are for the next refresh only: a later statement of the transaction may
    -- change the values they were computed from.
    IF coalesce(current_setting('wfmon.search_given_terms', true), '') <> '' THEN
        PERFORM set_config('wfmon.search_given_terms', '', true);
    END IF;
END
$$;

-- Give the next refresh these terms (`term,term,...`, sorted and distinct) for this
-- execution; true when given. None are given for NULL terms, nor when the database's md5
-- would not hash the UTF-8 bytes the writer hashed.
CREATE FUNCTION public.wfmon_give_search_terms(execution_id uuid, terms text) RETURNS boolean
LANGUAGE sql
SET search_path = public, pg_temp
RETURN CASE
    WHEN terms IS NOT NULL AND current_setting('server_encoding') = 'UTF8'
    THEN set_config('wfmon.search_given_terms',
                    concat_ws(';', nullif(current_setting('wfmon.search_given_terms', true), ''),
                              execution_id || ':' || terms),
                    true) IS NOT NULL
    ELSE false
END;
REVOKE EXECUTE ON FUNCTION public.wfmon_give_search_terms(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.wfmon_give_search_terms(uuid, text) TO wfmon_system;
