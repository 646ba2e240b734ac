-- The builder's own workflow definition is not search data (issue 15).
--
-- The builder workflow's one argument (wfmon.runtime.messages.BuilderRunInput) carries the
-- whole WorkflowDefinition that ran (`definition`: nodes, configs, timeouts, retry
-- policies), next to the user's own `input`. Profiled on the sync benchmark's 20-node
-- executions (docs/architecture/execution-sync.md): the definition was ~6 KB of an
-- execution's ~10 KB of input_values and ~50 of its 138 path terms, and the search
-- triggers were ~6 ms of a first sync's ~9 ms of PostgreSQL CPU. Users search their
-- values (order ids, error text), not the builder's plumbing; the definition of a run is
-- shown on its execution page and kept in workflow_versions.
--
-- The rule, in one place: `wfmon_search_input(workflow_type, input)` is the execution's
-- input as search sees it. For the builder's workflow type ('WfmonBuilderWorkflow',
-- wfmon.model.BUILDER_WORKFLOW_TYPE) it is the input without the first argument's
-- `definition` key; for every other workflow type it is the input unchanged. The refresh
-- builds the document's input text (`inputs`, free text) and its input values (`@>`
-- and the path terms) from it, so the term table and the document scan keep giving the
-- same answers; wfmon.db.search reads the execution's input through it for snippets.
-- The user's input (`input`), the ids and every component's input (`config`,
-- `workflow_input`, `upstream`) are searched as before. The stored execution row is not
-- changed: only what search indexes.
--
-- Existing documents keep their definition terms until their next refresh (any re-sync:
-- their input values differ from the stored ones, so the terms are rebuilt);
-- wfmon.db.search.refresh_search_documents(conn) rebuilds all of them at once.
--
-- The refresh is 0541's statement (same plan settings) with `e.input` read through
-- wfmon_search_input.

CREATE FUNCTION public.wfmon_search_input(workflow_type text, input jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN workflow_type = 'WfmonBuilderWorkflow' AND jsonb_typeof(input) = 'array'
    THEN input #- '{0,definition}'
    ELSE input
END;

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
