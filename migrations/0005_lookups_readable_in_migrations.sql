-- Lookup tables (user_roles, component_visibility) readable by every role, including the
-- role that runs migrations.
--
-- FORCE ROW LEVEL SECURITY hides every table from its owner, so a later seed migration that
-- resolves a lookup (e.g. "SELECT id FROM component_visibility WHERE name = 'public'")
-- silently found nothing and inserted no rows. These rows are public reference data: a
-- SELECT policy for PUBLIC fixes that without opening anything else. Table privileges
-- still decide who may read at all (only the owner, wfmon_user and wfmon_system hold
-- SELECT), and nobody but the owner may write them.

DROP POLICY user_roles_read ON user_roles;
CREATE POLICY user_roles_read ON user_roles FOR SELECT TO PUBLIC USING (true);

DROP POLICY component_visibility_read ON component_visibility;
CREATE POLICY component_visibility_read ON component_visibility FOR SELECT TO PUBLIC USING (true);
