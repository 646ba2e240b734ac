-- Search terms: path=value only (issue 12, after measuring 0401).
--
-- Measured with bench/bench_search.py at 50,000 executions (docs/architecture/search.md):
-- 0401's error trigrams made `error:TEXT` slower than 0400's document scan (the test texts
-- match ~22% of the executions, so the candidates are thousands and the postings of 12
-- trigrams cost more than scanning the short documents), while they were ~56% of the term
-- rows (97 of ~173 per execution) and part of the ~3x sync write cost (after 0402 most of
-- the remaining cost is the path terms: docs/architecture/search.md). So the term table
-- keeps only the `path=value` terms (kinds 'i' / 'o', which made path equality 27-41x
-- faster), and `error:TEXT` goes back to the document scan (wfmon.db.search).
--
-- wfmon_search_term, wfmon_json_term_value, wfmon_json_leaf_bodies are unchanged;
-- wfmon_error_trigrams stays (the benchmark counts trigrams with it) but is no longer
-- called by the refresh.

-- 0401's function without the error trigrams: documents, then the sorted path terms and
-- the difference against the previous ones (execution_search_documents.terms).
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
    documents AS (
        SELECT b.*,
               ARRAY(SELECT DISTINCT t FROM (
                   SELECT wfmon_search_term('i', x) FROM wfmon_json_leaf_bodies(b.input_values) x
                   UNION ALL
                   SELECT wfmon_search_term('o', x) FROM wfmon_json_leaf_bodies(b.output_values) x
               ) y (t) ORDER BY t) AS terms
        FROM built b
    ),
    previous AS (
        SELECT d.execution_id, d.created_by, d.terms
        FROM execution_search_documents d WHERE d.execution_id = ANY (ids)
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

-- Existing rows. The owner running this migration sees no rows of these two tables (FORCE
-- ROW LEVEL SECURITY and no policy for it), so an UPDATE / DELETE here would touch nothing.
-- For this transaction only, the owner is exempted (NO FORCE: owners bypass RLS), then
-- FORCE is set back before commit; no other session sees the tables without it.
ALTER TABLE execution_search_documents NO FORCE ROW LEVEL SECURITY;
ALTER TABLE execution_search_terms NO FORCE ROW LEVEL SECURITY;

-- Each document's term array becomes its path terms (the same expression as the function,
-- from the stored input_values / output_values), so the next refresh's difference is
-- against what is now stored. Documents with terms NULL (never refreshed by 0401) keep
-- NULL: their next refresh writes all their terms, as before.
UPDATE execution_search_documents d
SET terms = ARRAY(SELECT DISTINCT t FROM (
        SELECT wfmon_search_term('i', x) FROM wfmon_json_leaf_bodies(d.input_values) x
        UNION ALL
        SELECT wfmon_search_term('o', x) FROM wfmon_json_leaf_bodies(d.output_values) x
    ) y (t) ORDER BY t)
WHERE d.terms IS NOT NULL;

-- The term rows become exactly the documents' arrays: rewriting the ~45% that stay is
-- cheaper than deleting the ~55% error trigrams row by row, and TRUNCATE gives the space
-- back at once (a DELETE would leave the table at its old size until a VACUUM FULL).
TRUNCATE execution_search_terms;
INSERT INTO execution_search_terms (created_by, term, execution_id)
SELECT d.created_by, t.term, d.execution_id
FROM execution_search_documents d CROSS JOIN LATERAL unnest(d.terms) t (term)
WHERE d.terms IS NOT NULL
ON CONFLICT DO NOTHING;

ALTER TABLE execution_search_documents FORCE ROW LEVEL SECURITY;
ALTER TABLE execution_search_terms FORCE ROW LEVEL SECURITY;
