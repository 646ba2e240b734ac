-- The search refresh without its planning cost (issue 15, after 0540).
--
-- Profiled after 0540 with the sync's one-statement write (PostgreSQL backend CPU per
-- write): the search triggers still cost ~2.5-4.5 ms of a 4-7 ms write, and a refresh of
-- ONE execution whose payloads had not changed (no walk, no term writes) cost 2.2-2.7 ms,
-- against ~0.35 ms per execution when 200 are refreshed in one call. The difference is
-- planning: the refresh is one statement of seven CTEs, and as a SQL function called once
-- per transaction it was planned again on every call (a custom plan for the `ids`
-- parameter). As PL/pgSQL with `plan_cache_mode = force_generic_plan` the statement is
-- planned once per session and reused: 0.57-0.8 ms for the same call (same run).
-- The generic plan is the one a custom plan takes for a handful of ids anyway: index
-- scans on the primary keys for `= ANY (ids)`, nested loops into the component and
-- attempt rows; a refresh of many ids (wfmon.db.search.refresh_search_documents) uses
-- the same index scans.
--
-- Same statement as 0540's wfmon_refresh_search_documents, so the same documents and terms.

CREATE OR REPLACE FUNCTION public.wfmon_refresh_search_documents(ids uuid[]) RETURNS void
LANGUAGE plpgsql
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
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
    ON CONFLICT DO NOTHING;
END
$$;
