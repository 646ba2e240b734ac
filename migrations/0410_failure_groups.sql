-- Failure groups (issue 12): failures grouped by workflow, node and an error fingerprint.
--
-- The fingerprint is defined here, once: wfmon_error_fingerprint(failure_type, message)
-- masks what varies between occurrences of the same error (quoted values, ISO timestamps,
-- UUIDs, hex ids, numbers) and prefixes the failure type. The dbt models
-- (dbt_project/models/failures) call it; Python code that needs it calls it through SQL
-- (wfmon.db.failures.error_fingerprint), never a copy of the rules.
--
-- Like the statistics tables (0200), the tables are created here with their row-level
-- security and dbt only MERGEs into them as wfmon_system (full_refresh = false).
--
-- Read rule: a failure group carries an error message taken from executions, which is
-- execution data. Public workflows share their definition and statistics, NEVER another
-- user's inputs, outputs or histories: so failure groups are readable by the workflow's
-- OWNER only (the rule of wfmon_owns_workflow), not by everyone who can read a public workflow. The
-- models also only group executions started by the workflow's owner, so a group never
-- holds another user's message.

CREATE OR REPLACE FUNCTION public.wfmon_error_fingerprint(failure_type text, message text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(nullif(btrim(failure_type), ''), 'Error') || ': ' || left(btrim(
        regexp_replace(                         -- runs of whitespace -> one space
        regexp_replace(                         -- numbers (integers and decimals)
        regexp_replace(                         -- hex ids: 0x..., or 8+ hex chars with a digit
        regexp_replace(
        regexp_replace(                         -- UUIDs
        regexp_replace(                         -- ISO dates and timestamps
        regexp_replace(                         -- 'quoted' and "quoted" values
        regexp_replace(coalesce(message, ''),
            '(^|[^[:alnum:]])''[^'']*''', '\1<value>', 'g'),
            '"[^"]*"', '<value>', 'g'),
            '\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?',
            '<time>', 'g'),
            '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
            '\m0x[0-9a-f]+\M', '<id>', 'gi'),
            '\m(?=[a-z]*[0-9])[0-9a-f]{8,}\M', '<id>', 'gi'),
            '\d+([.,]\d+)?', '<n>', 'g'),
            '\s+', ' ', 'g')), 500)
$$;

COMMENT ON FUNCTION public.wfmon_error_fingerprint(text, text) IS
    'Error fingerprint of failure groups: failure type + message with varying parts masked.';

-- One row per (workflow, node, fingerprint, UTC day of the execution's start): the
-- sparkline, and the unit an incremental refresh recomputes (a (workflow, day) at a time).
CREATE TABLE failure_group_days (
    workflow_id                   uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    node_id                       text NOT NULL,
    fingerprint                   text NOT NULL,
    day                           date NOT NULL,
    project_id                    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    component_name                text,
    failure_type                  text,
    failures                      integer NOT NULL CHECK (failures >= 0),
    executions                    integer NOT NULL CHECK (executions >= 0),
    retried_failures              integer NOT NULL DEFAULT 0 CHECK (retried_failures >= 0),
    expected_retry_failures       integer NOT NULL DEFAULT 0 CHECK (expected_retry_failures >= 0),
    first_seen                    timestamptz NOT NULL,
    last_seen                     timestamptz NOT NULL,
    latest_execution_id           uuid,
    latest_component_execution_id uuid,
    latest_message                text,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, node_id, fingerprint, day)
);
CREATE INDEX failure_group_days_project_idx ON failure_group_days (project_id, day);
CREATE INDEX failure_group_days_updated_idx ON failure_group_days (updated_at);

-- One row per (workflow, node, fingerprint): totals over all days and the latest example.
CREATE TABLE failure_groups (
    workflow_id                   uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    node_id                       text NOT NULL,
    fingerprint                   text NOT NULL,
    project_id                    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    component_name                text,
    failure_type                  text,
    failures                      integer NOT NULL CHECK (failures >= 0),
    executions                    integer NOT NULL CHECK (executions >= 0),
    retried_failures              integer NOT NULL DEFAULT 0 CHECK (retried_failures >= 0),
    expected_retry_failures       integer NOT NULL DEFAULT 0 CHECK (expected_retry_failures >= 0),
    first_seen                    timestamptz NOT NULL,
    last_seen                     timestamptz NOT NULL,
    latest_execution_id           uuid,
    latest_component_execution_id uuid,
    latest_message                text,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, node_id, fingerprint)
);
CREATE INDEX failure_groups_project_seen_idx ON failure_groups (project_id, last_seen DESC);
CREATE INDEX failure_groups_project_count_idx ON failure_groups (project_id, failures DESC);
CREATE INDEX failure_groups_workflow_seen_idx ON failure_groups (workflow_id, last_seen DESC);
CREATE INDEX failure_groups_updated_idx ON failure_groups (updated_at);

-- When each failures model last finished a build (written by the models' post-hook): the
-- pages say when the groups were last built, and the next refresh starts from there.
-- Holds no user data (a model name and a time), so every signed-in user may read it.
CREATE TABLE failure_group_builds (
    model      text PRIMARY KEY CHECK (model IN ('failure_group_days', 'failure_groups')),
    built_at   timestamptz NOT NULL
);

-- An incremental refresh recomputes the (workflow, UTC day) of each changed execution.
CREATE INDEX IF NOT EXISTS workflow_executions_workflow_started_idx
    ON workflow_executions (workflow_id, started_at);

ALTER TABLE failure_group_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE failure_group_days FORCE ROW LEVEL SECURITY;
ALTER TABLE failure_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE failure_groups FORCE ROW LEVEL SECURITY;
ALTER TABLE failure_group_builds ENABLE ROW LEVEL SECURITY;
ALTER TABLE failure_group_builds FORCE ROW LEVEL SECURITY;

GRANT SELECT ON failure_group_days, failure_groups, failure_group_builds TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON failure_group_days, failure_groups, failure_group_builds
    TO wfmon_system;
GRANT EXECUTE ON FUNCTION public.wfmon_error_fingerprint(text, text) TO wfmon_user, wfmon_system;

-- The owner rule written inline (as 0012 does): the caller's id is computed once per
-- statement, then a primary-key probe of workflows per row.
CREATE POLICY failure_group_days_owner_read ON failure_group_days FOR SELECT TO wfmon_user
    USING (EXISTS (
        SELECT 1 FROM workflows w
        WHERE w.id = failure_group_days.workflow_id
          AND w.created_by = (SELECT wfmon_current_user_id())));
CREATE POLICY failure_group_days_system ON failure_group_days FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
CREATE POLICY failure_groups_owner_read ON failure_groups FOR SELECT TO wfmon_user
    USING (EXISTS (
        SELECT 1 FROM workflows w
        WHERE w.id = failure_groups.workflow_id
          AND w.created_by = (SELECT wfmon_current_user_id())));
CREATE POLICY failure_groups_system ON failure_groups FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
CREATE POLICY failure_group_builds_read ON failure_group_builds FOR SELECT TO wfmon_user
    USING (wfmon_current_user_id() IS NOT NULL);
CREATE POLICY failure_group_builds_system ON failure_group_builds FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
