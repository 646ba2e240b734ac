-- Search terms (issue 12): an index that row-level security lets wfmon_user use.
--
-- 0400 reads one search document per visible execution, because an index only serves a
-- LEAKPROOF condition under RLS and ILIKE / jsonb @> are not. int8 equality (int8eq) and
-- `= ANY (int8[])` over it ARE leakproof, so a table of hashed terms with a btree on
-- (created_by, term, execution_id) is usable by the caller: the RLS condition and the term
-- are both index conditions. A search looks up its terms here to get candidate executions,
-- then checks the real condition (0400's LIKE / @> on the document) on those only.
--
-- Terms, each a bigint: the first 64 bits of md5(kind || ':' || body), signed
-- (wfmon_search_term; wfmon.db.search hashes the query's terms with the same functions):
--   kind 'e', body a trigram (3 characters) of a line of the document's lower-cased
--     `errors` text;
--   kind 'i' / 'o', body `path=value` of every scalar leaf of an input / output: path is
--     the object keys joined by '.', with '*' for any list position (the search's JSON
--     containment matches a numeric key against every list element), value as
--     wfmon_json_term_value writes it. A path without input./output. looks up both kinds.
-- Free text inside inputs and outputs (input:TEXT, bare words) is not in this table: the
-- JSON text's trigrams would be several times the error trigrams (measured in
-- docs/architecture/search.md), so those searches keep 0400's document scan.
--
-- Kept current by 0400's triggers: wfmon_refresh_search_documents is replaced by a version
-- that also writes the terms, as a difference against the terms it wrote last time (kept
-- on the document, execution_search_documents.terms), so a re-sync that changes nothing
-- writes no term rows and deleting old terms needs no second index.

CREATE TABLE execution_search_terms (
    created_by   uuid   NOT NULL,
    term         bigint NOT NULL,
    -- Deleting an execution deletes its document and so its terms.
    execution_id uuid   NOT NULL REFERENCES execution_search_documents (execution_id)
                        ON DELETE CASCADE,
    PRIMARY KEY (created_by, term, execution_id)
);

ALTER TABLE execution_search_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE execution_search_terms FORCE ROW LEVEL SECURITY;
GRANT SELECT ON execution_search_terms TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON execution_search_terms TO wfmon_system;
-- Read by the execution's owner (the rule of workflow_executions and of the documents).
CREATE POLICY execution_search_terms_owner_read ON execution_search_terms
    FOR SELECT TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY execution_search_terms_system ON execution_search_terms
    FOR ALL TO wfmon_system USING (true) WITH CHECK (true);

-- The terms written for this document last time (NULL: none yet, e.g. a document built
-- before this migration; its next refresh writes them all).
ALTER TABLE execution_search_documents ADD COLUMN terms bigint[];

CREATE FUNCTION public.wfmon_search_term(kind text, body text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ('x' || substr(md5(kind || ':' || body), 1, 16))::bit(64)::bigint;

-- How a scalar JSON value is written in a term: 's' + the string, 'n' + the number without
-- trailing zeros (numbers compare as numbers: 1.50 = 1.5), 'b' + true/false, 'z' for null.
-- wfmon.db.search writes the query's values with this same function.
CREATE FUNCTION public.wfmon_json_term_value(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE jsonb_typeof(v)
    WHEN 'string' THEN 's' || (v #>> '{}')
    WHEN 'number' THEN 'n' || trim_scale((v #>> '{}')::numeric)::text
    WHEN 'boolean' THEN 'b' || (v #>> '{}')
    WHEN 'null' THEN 'z'
END;

-- The distinct `path=value` bodies of the scalar leaves of a JSON array of documents
-- (0400's input_values / output_values).
CREATE FUNCTION public.wfmon_json_leaf_bodies(docs jsonb) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    WITH RECURSIVE walk (path, v) AS (
        SELECT NULL::text, d FROM (SELECT DISTINCT d FROM jsonb_array_elements(docs) d) x
        UNION ALL
        SELECT CASE WHEN w.path IS NULL THEN c.key ELSE w.path || '.' || c.key END, c.value
        FROM walk w
        CROSS JOIN LATERAL (
            SELECT o.key, o.value
            FROM jsonb_each(CASE WHEN jsonb_typeof(w.v) = 'object' THEN w.v END) o
            UNION ALL
            SELECT '*', a.value
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(w.v) = 'array' THEN w.v END) a
        ) c
    )
    SELECT DISTINCT path || '=' || public.wfmon_json_term_value(v)
    FROM walk
    WHERE path IS NOT NULL AND jsonb_typeof(v) NOT IN ('object', 'array')
$$;

-- The distinct trigrams of an errors text, line by line (a searched text has no newline).
CREATE FUNCTION public.wfmon_error_trigrams(errors text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT DISTINCT substr(l.line, i, 3)
    FROM (SELECT DISTINCT line FROM regexp_split_to_table(errors, E'\n') line) l
    CROSS JOIN LATERAL generate_series(1, length(l.line) - 2) i
$$;

-- 0400's function, same documents, plus the terms (see the top of this file).
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
                   SELECT wfmon_search_term('e', x) FROM wfmon_error_trigrams(b.errors) x
                   UNION ALL
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

GRANT EXECUTE ON FUNCTION wfmon_search_term(text, text) TO wfmon_system, wfmon_user;
GRANT EXECUTE ON FUNCTION wfmon_json_term_value(jsonb) TO wfmon_system, wfmon_user;
GRANT EXECUTE ON FUNCTION wfmon_json_leaf_bodies(jsonb) TO wfmon_system;
GRANT EXECUTE ON FUNCTION wfmon_error_trigrams(text) TO wfmon_system;

-- Documents built before this migration have terms NULL and no term rows: their next sync
-- writes them, or wfmon.db.search.refresh_search_documents (as wfmon_system) at once; the
-- owner running this migration sees no rows (FORCE ROW LEVEL SECURITY, no policy for it).
