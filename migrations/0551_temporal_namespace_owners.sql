-- Whose are the workflows nobody built? A Temporal namespace can be given to one project.
--
-- Sync registers a workflow per (namespace, workflow type) for executions no wfmon user
-- started (0010). Without an owner for the namespace they go to the system-owned
-- Discovered project, which no one signs in to. With a row here, sync registers them in
-- the named project, as its owner, so that owner sees those executions, their component
-- runs and their attempts (the existing read policies follow created_by).
--
-- Only the operator assigns a namespace (as wfmon_system, `wfmon namespace assign`):
-- letting an end user claim one would let them read everyone's executions in it. Users
-- read the assignments of their own projects. An execution keeps the owner it was first
-- recorded with; assign a namespace before its executions are synced.

CREATE TABLE temporal_namespace_owners (
    temporal_namespace text PRIMARY KEY CHECK (temporal_namespace <> ''),
    project_id         uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_by         uuid NOT NULL REFERENCES users (id),
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX temporal_namespace_owners_project_idx ON temporal_namespace_owners (project_id);

ALTER TABLE temporal_namespace_owners ENABLE ROW LEVEL SECURITY;
ALTER TABLE temporal_namespace_owners FORCE ROW LEVEL SECURITY;

GRANT SELECT ON temporal_namespace_owners TO wfmon_user;
CREATE POLICY temporal_namespace_owners_owner_read ON temporal_namespace_owners
    FOR SELECT TO wfmon_user USING (created_by = (SELECT wfmon_current_user_id()));

-- The system writes assignments whose owner is the project's owner (so nobody is handed
-- a project that is not theirs).
GRANT SELECT, INSERT, UPDATE, DELETE ON temporal_namespace_owners TO wfmon_system;
CREATE POLICY temporal_namespace_owners_system ON temporal_namespace_owners
    FOR ALL TO wfmon_system
    USING (true)
    WITH CHECK (EXISTS (SELECT 1 FROM projects p
                        WHERE p.id = temporal_namespace_owners.project_id
                          AND p.created_by = temporal_namespace_owners.created_by));

-- Sync may register workflows in an assigned project as its owner (as it may in the
-- Discovered project as the system user, 0010): the policy pins where the row can go.
CREATE POLICY workflows_system_assigned_insert ON workflows FOR INSERT TO wfmon_system
    WITH CHECK (EXISTS (SELECT 1 FROM temporal_namespace_owners o
                        WHERE o.project_id = workflows.project_id
                          AND o.created_by = workflows.created_by));
