-- Search (issue 12): `error:TEXT` reads a narrow copy of the documents' error text.
--
-- Measured at 50,000 executions (docs/architecture/search.md, "0560"): `error:` was a scan
-- of execution_search_documents, ~2.1 KB per row in the main heap (the path-term array,
-- the compressed input and output text and values sit next to the ~170-byte error text),
-- so one user's search read ~16,000 pages (128 MB, more than shared_buffers) to look at
-- 25,000 error texts. Their distinct lines in a table of their own are ~10x fewer pages
-- (13.5 MB against 128 MB of documents' heap) and stay cached.
--
-- Why a copy kept by a trigger on the documents and not a change of the refresh: the
-- refresh functions (0540, 0541) and the sync's write path are maintained elsewhere; this
-- trigger only follows what they write. It fires for a document that is inserted or whose
-- `errors` changed (0540 does not rewrite an unchanged document, so a re-sync that changes
-- nothing writes nothing here). Executions without any error text have no row: they match
-- no `error:` search. Deleting the document (or its execution) deletes the row.
--
-- Still no trigram index: under row-level security PostgreSQL would not use it (LIKE is
-- not leakproof, 0400's note), so it would only cost writes.

CREATE TABLE execution_search_errors (
    execution_id uuid PRIMARY KEY
        REFERENCES execution_search_documents (execution_id) ON DELETE CASCADE,
    -- The execution's owner, as in the document: the read policy is a column comparison.
    created_by   uuid NOT NULL,
    -- The distinct lines of execution_search_documents.errors (lower-cased, one line per
    -- source), never ''. A text without a line break is in the document's errors exactly
    -- when it is in one of its lines, so LIKE gives the document's answer on about half the
    -- bytes (the same error repeats across components and attempts). wfmon.db.search sends a
    -- text with a line break to the documents.
    errors       text NOT NULL CHECK (errors <> '')
);
-- Not compressed: LIKE reads every byte, and decompressing cost more than the page reads
-- saved (measured, 0560 in the architecture note). Inline up to the 2 KB toast threshold,
-- longer texts out of line.
ALTER TABLE execution_search_errors ALTER COLUMN errors SET STORAGE EXTERNAL;

-- The distinct non-empty lines of `errors`, or NULL when there are none. A new value (never
-- a compressed datum carried over from the document).
CREATE FUNCTION public.wfmon_search_error_lines(errors text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT string_agg(DISTINCT l, E'\n') FROM regexp_split_to_table(errors, E'\n') l
        WHERE l <> '');

-- Executions synced before this migration. The owner running it sees no document under
-- FORCE ROW LEVEL SECURITY (no policy for it; 0402's note), so the documents' FORCE is
-- lifted for this transaction only (DDL is transactional: no other session ever sees the
-- table unforced). The new table gets its policies after it is filled.
ALTER TABLE execution_search_documents NO FORCE ROW LEVEL SECURITY;
INSERT INTO execution_search_errors (execution_id, created_by, errors)
SELECT execution_id, created_by, lines
FROM execution_search_documents, wfmon_search_error_lines(errors) AS lines
WHERE lines IS NOT NULL;
ALTER TABLE execution_search_documents FORCE ROW LEVEL SECURITY;

ALTER TABLE execution_search_errors ENABLE ROW LEVEL SECURITY;
ALTER TABLE execution_search_errors FORCE ROW LEVEL SECURITY;
GRANT SELECT ON execution_search_errors TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON execution_search_errors TO wfmon_system;
CREATE POLICY execution_search_errors_owner_read ON execution_search_errors
    FOR SELECT TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY execution_search_errors_system ON execution_search_errors
    FOR ALL TO wfmon_system USING (true) WITH CHECK (true);

-- Runs as the document's writer (wfmon_system, inside the sync's transaction).
CREATE FUNCTION public.wfmon_search_errors_from_documents() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    lines text := wfmon_search_error_lines(NEW.errors);
BEGIN
    IF lines IS NULL THEN
        DELETE FROM execution_search_errors WHERE execution_id = NEW.execution_id;
    ELSE
        INSERT INTO execution_search_errors AS x (execution_id, created_by, errors)
        VALUES (NEW.execution_id, NEW.created_by, lines)
        ON CONFLICT (execution_id) DO UPDATE
            SET created_by = EXCLUDED.created_by, errors = EXCLUDED.errors;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER execution_search_documents_errors_insert
    AFTER INSERT ON execution_search_documents
    FOR EACH ROW WHEN (NEW.errors <> '')
    EXECUTE FUNCTION wfmon_search_errors_from_documents();
CREATE TRIGGER execution_search_documents_errors_update
    AFTER UPDATE OF errors, created_by ON execution_search_documents
    FOR EACH ROW
    WHEN (OLD.errors IS DISTINCT FROM NEW.errors OR OLD.created_by IS DISTINCT FROM NEW.created_by)
    EXECUTE FUNCTION wfmon_search_errors_from_documents();

GRANT EXECUTE ON FUNCTION wfmon_search_error_lines(text) TO wfmon_system;
