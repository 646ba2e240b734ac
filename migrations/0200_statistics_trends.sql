-- Daily trends, built by dbt (dbt_project/models/trends) next to the statistics tables.
--
-- Like workflow_statistics and project_statistics, these tables are created here, with
-- their row-level security, and dbt only MERGEs rows into them as wfmon_system: dbt never
-- drops or recreates a table (the models set full_refresh = false, and wfmon_system does
-- not own the tables, so it could not drop them anyway).
--
-- Keys: one row per (workflow, day) and per (workflow, day, component). The day is the UTC
-- date of the execution's close time, the same window the Dagster partitions use.
-- Trends are per workflow (also for components) so that the read policy is the same as
-- workflow_statistics: a user reads the trends of workflows they can read.

CREATE TABLE workflow_daily_trends (
    workflow_id       uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    day               date NOT NULL,
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    runs              integer NOT NULL CHECK (runs >= 0),
    successful_runs   integer NOT NULL CHECK (successful_runs >= 0),
    failed_runs       integer NOT NULL CHECK (failed_runs >= 0),
    avg_duration_ms   bigint,
    p50_duration_ms   bigint,
    p95_duration_ms   bigint,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, day)
);
CREATE INDEX workflow_daily_trends_project_idx ON workflow_daily_trends (project_id, day);
CREATE INDEX workflow_daily_trends_updated_idx ON workflow_daily_trends (updated_at);

CREATE TABLE component_daily_trends (
    workflow_id       uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    day               date NOT NULL,
    component_name    text NOT NULL,
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    component_id      uuid REFERENCES components (id) ON DELETE SET NULL,
    runs              integer NOT NULL CHECK (runs >= 0),
    failures          integer NOT NULL CHECK (failures >= 0),
    retries           integer NOT NULL CHECK (retries >= 0),
    expected_retries  integer NOT NULL CHECK (expected_retries >= 0),
    avg_duration_ms   bigint,
    p50_duration_ms   bigint,
    p95_duration_ms   bigint,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, day, component_name)
);
CREATE INDEX component_daily_trends_component_idx ON component_daily_trends (component_name, day);
CREATE INDEX component_daily_trends_updated_idx ON component_daily_trends (updated_at);

-- Incremental refreshes find what changed since their last run by updated_at.
CREATE INDEX IF NOT EXISTS workflow_executions_updated_idx ON workflow_executions (updated_at);
CREATE INDEX IF NOT EXISTS workflow_statistics_updated_idx ON workflow_statistics (updated_at);
CREATE INDEX IF NOT EXISTS project_statistics_updated_idx ON project_statistics (updated_at);

ALTER TABLE workflow_daily_trends ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_daily_trends FORCE ROW LEVEL SECURITY;
ALTER TABLE component_daily_trends ENABLE ROW LEVEL SECURITY;
ALTER TABLE component_daily_trends FORCE ROW LEVEL SECURITY;

GRANT SELECT ON workflow_daily_trends, component_daily_trends TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON workflow_daily_trends, component_daily_trends
    TO wfmon_system;

CREATE POLICY workflow_daily_trends_read ON workflow_daily_trends FOR SELECT TO wfmon_user
    USING (wfmon_can_read_workflow(workflow_id));
CREATE POLICY workflow_daily_trends_system ON workflow_daily_trends FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
CREATE POLICY component_daily_trends_read ON component_daily_trends FOR SELECT TO wfmon_user
    USING (wfmon_can_read_workflow(workflow_id));
CREATE POLICY component_daily_trends_system ON component_daily_trends FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
