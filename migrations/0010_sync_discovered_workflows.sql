-- Sync registers a workflow per (namespace, workflow type) for executions that no wfmon
-- user started, so nothing Temporal knows is dropped. The system may create such workflows
-- only inside the system-owned "Discovered" project, as the system user: the policy checks
-- the caller (wfmon_system) and pins where the row can go.

GRANT INSERT ON workflows TO wfmon_system;
CREATE POLICY workflows_system_discovered_insert ON workflows FOR INSERT TO wfmon_system
    WITH CHECK (project_id = '00000000-0000-0000-0000-000000000002'
                AND created_by = '00000000-0000-0000-0000-000000000001');
