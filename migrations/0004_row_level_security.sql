-- Row-level security: enforced on every table, for everyone but superusers.
--
-- How a request is checked (see docs/architecture/database.md):
--   * wfmon/db runs each unit of work in a transaction under SET LOCAL ROLE wfmon_user (an
--     end user, whose auth id is in request.jwt.claim.sub) or wfmon_system (the sync writer).
--   * GRANTs decide which commands a role may run at all; policies decide which rows.
--   * Every policy names the role it is for (TO ...). wfmon_system policies say "the caller
--     is the system role", never "the row's owner is the system user".
--   * Every policy that allows writing has WITH CHECK, so nobody writes a row they could
--     not own.
--   * FORCE: the owning role (the one that ran these migrations) is subject to the
--     policies too; no policy is written for it, so it sees nothing unless it switches role.

-- Helpers -------------------------------------------------------------------------------

-- users.id of the caller, or NULL when there is no caller / no users row for them.
-- Plain SQL under the caller's rights (not SECURITY DEFINER): the users policy below lets
-- a caller read their own row, which is all this needs. Policies call it as
-- (SELECT wfmon_current_user_id()) so PostgreSQL evaluates it once per statement.
CREATE FUNCTION public.wfmon_current_user_id() RETURNS uuid
LANGUAGE sql STABLE
AS $$ SELECT u.id FROM public.users u WHERE u.auth_user_id = auth.uid() $$;

CREATE FUNCTION public.wfmon_public_visibility_id() RETURNS uuid
LANGUAGE sql STABLE
AS $$ SELECT v.id FROM public.component_visibility v WHERE v.name = 'public' $$;

-- The caller owns this project.
CREATE FUNCTION public.wfmon_owns_project(project uuid) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.projects p
        WHERE p.id = project AND p.created_by = public.wfmon_current_user_id())
$$;

-- The caller owns this workflow.
CREATE FUNCTION public.wfmon_owns_workflow(workflow uuid) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.workflows w
        WHERE w.id = workflow AND w.created_by = public.wfmon_current_user_id())
$$;

-- The caller owns this workflow or it is public (and the caller is signed in).
CREATE FUNCTION public.wfmon_can_read_workflow(workflow uuid) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.workflows w
        WHERE w.id = workflow
          AND (w.created_by = public.wfmon_current_user_id()
               OR (public.wfmon_current_user_id() IS NOT NULL
                   AND w.visibility_id = public.wfmon_public_visibility_id())))
$$;

-- The caller started this execution (public workflows never share executions).
CREATE FUNCTION public.wfmon_owns_execution(execution uuid) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.workflow_executions e
        WHERE e.id = execution AND e.created_by = public.wfmon_current_user_id())
$$;

-- Turn it on everywhere ----------------------------------------------------------------

DO $enable$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'user_roles', 'component_visibility', 'users', 'projects', 'workflows',
        'workflow_versions', 'components', 'task_queues', 'workflow_executions',
        'component_executions', 'component_execution_attempts', 'project_connections',
        'workflow_statistics', 'project_statistics'
    ] LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END
$enable$;

-- Lookups: readable by both roles, written only by migrations ---------------------------

GRANT SELECT ON user_roles, component_visibility TO wfmon_user, wfmon_system;
CREATE POLICY user_roles_read ON user_roles FOR SELECT TO wfmon_user, wfmon_system USING (true);
CREATE POLICY component_visibility_read ON component_visibility
    FOR SELECT TO wfmon_user, wfmon_system USING (true);

GRANT SELECT ON task_queues TO wfmon_user;
GRANT SELECT, INSERT, UPDATE ON task_queues TO wfmon_system;
CREATE POLICY task_queues_user_read ON task_queues FOR SELECT TO wfmon_user USING (true);
CREATE POLICY task_queues_system ON task_queues FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);

-- users: a user reads their own row and may change only name and email (column grant), so
-- nobody can give themselves a role. The system provisions users.

GRANT SELECT ON users TO wfmon_user;
GRANT UPDATE (email, display_name, updated_at) ON users TO wfmon_user;
GRANT SELECT, INSERT, UPDATE ON users TO wfmon_system;
CREATE POLICY users_self_read ON users FOR SELECT TO wfmon_user
    USING (auth_user_id = (SELECT auth.uid()));
CREATE POLICY users_self_update ON users FOR UPDATE TO wfmon_user
    USING (auth_user_id = (SELECT auth.uid()))
    WITH CHECK (auth_user_id = (SELECT auth.uid()));
CREATE POLICY users_system ON users FOR ALL TO wfmon_system USING (true) WITH CHECK (true);

-- projects: owned by created_by.

GRANT SELECT, INSERT, UPDATE, DELETE ON projects TO wfmon_user;
GRANT SELECT ON projects TO wfmon_system;
CREATE POLICY projects_owner ON projects FOR ALL TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()))
    WITH CHECK (created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY projects_system_read ON projects FOR SELECT TO wfmon_system USING (true);

-- workflows: the owner manages them inside their own projects; public ones are readable
-- by every signed-in user (definition only: executions have their own policies).

GRANT SELECT, INSERT, UPDATE, DELETE ON workflows TO wfmon_user;
GRANT SELECT ON workflows TO wfmon_system;
CREATE POLICY workflows_owner ON workflows FOR ALL TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()))
    WITH CHECK (created_by = (SELECT wfmon_current_user_id()) AND wfmon_owns_project(project_id));
CREATE POLICY workflows_public_read ON workflows FOR SELECT TO wfmon_user
    USING ((SELECT wfmon_current_user_id()) IS NOT NULL
           AND visibility_id = (SELECT wfmon_public_visibility_id()));
CREATE POLICY workflows_system_read ON workflows FOR SELECT TO wfmon_system USING (true);

-- workflow_versions: immutable; readable with the workflow, added by its owner.

GRANT SELECT, INSERT ON workflow_versions TO wfmon_user;
GRANT SELECT ON workflow_versions TO wfmon_system;
CREATE POLICY workflow_versions_read ON workflow_versions FOR SELECT TO wfmon_user
    USING (wfmon_can_read_workflow(workflow_id));
CREATE POLICY workflow_versions_owner_insert ON workflow_versions FOR INSERT TO wfmon_user
    WITH CHECK (created_by = (SELECT wfmon_current_user_id()) AND wfmon_owns_workflow(workflow_id));
CREATE POLICY workflow_versions_system_read ON workflow_versions
    FOR SELECT TO wfmon_system USING (true);

-- components: like workflows, without a project.

GRANT SELECT, INSERT, UPDATE, DELETE ON components TO wfmon_user;
GRANT SELECT ON components TO wfmon_system;
CREATE POLICY components_owner ON components FOR ALL TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()))
    WITH CHECK (created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY components_public_read ON components FOR SELECT TO wfmon_user
    USING ((SELECT wfmon_current_user_id()) IS NOT NULL
           AND visibility_id = (SELECT wfmon_public_visibility_id()));
CREATE POLICY components_system_read ON components FOR SELECT TO wfmon_system USING (true);

-- workflow_executions: a user sees and may record or delete their own runs; only the
-- system updates them (they are a cache of Temporal, kept by sync).

GRANT SELECT, INSERT, DELETE ON workflow_executions TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON workflow_executions TO wfmon_system;
CREATE POLICY workflow_executions_owner_read ON workflow_executions FOR SELECT TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY workflow_executions_owner_insert ON workflow_executions FOR INSERT TO wfmon_user
    WITH CHECK (created_by = (SELECT wfmon_current_user_id())
                AND wfmon_owns_project(project_id)
                AND (workflow_id IS NULL OR wfmon_owns_workflow(workflow_id)));
CREATE POLICY workflow_executions_owner_delete ON workflow_executions FOR DELETE TO wfmon_user
    USING (created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY workflow_executions_system ON workflow_executions FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);

-- component_executions and attempts: read by the execution's owner, written by the system.

GRANT SELECT ON component_executions, component_execution_attempts TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON component_executions, component_execution_attempts TO wfmon_system;
CREATE POLICY component_executions_owner_read ON component_executions
    FOR SELECT TO wfmon_user USING (wfmon_owns_execution(workflow_execution_id));
CREATE POLICY component_executions_system ON component_executions FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
CREATE POLICY component_execution_attempts_owner_read ON component_execution_attempts
    FOR SELECT TO wfmon_user
    USING (EXISTS (
        SELECT 1 FROM workflow_executions e
        WHERE e.temporal_namespace = component_execution_attempts.temporal_namespace
          AND e.temporal_workflow_id = component_execution_attempts.temporal_workflow_id
          AND e.temporal_run_id = component_execution_attempts.temporal_run_id
          AND e.created_by = (SELECT wfmon_current_user_id())));
CREATE POLICY component_execution_attempts_system ON component_execution_attempts
    FOR ALL TO wfmon_system USING (true) WITH CHECK (true);

-- project_connections: managed by the project's owner. The system reads them because
-- the worker runs the components that use them.

GRANT SELECT, INSERT, UPDATE, DELETE ON project_connections TO wfmon_user;
GRANT SELECT ON project_connections TO wfmon_system;
CREATE POLICY project_connections_owner ON project_connections FOR ALL TO wfmon_user
    USING (wfmon_owns_project(project_id))
    WITH CHECK (wfmon_owns_project(project_id)
                AND created_by = (SELECT wfmon_current_user_id()));
CREATE POLICY project_connections_system_read ON project_connections
    FOR SELECT TO wfmon_system USING (true);

-- Statistics: users read those of workflows they can read (own or public) and of their own
-- projects; only the system writes them.

GRANT SELECT ON workflow_statistics, project_statistics TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON workflow_statistics, project_statistics TO wfmon_system;
CREATE POLICY workflow_statistics_read ON workflow_statistics FOR SELECT TO wfmon_user
    USING (wfmon_can_read_workflow(workflow_id));
CREATE POLICY workflow_statistics_system ON workflow_statistics FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
CREATE POLICY project_statistics_owner_read ON project_statistics FOR SELECT TO wfmon_user
    USING (wfmon_owns_project(project_id));
CREATE POLICY project_statistics_system ON project_statistics FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
