-- Seed rows every installation needs. Applied before 0004 turns on FORCE ROW LEVEL
-- SECURITY, which would otherwise hide these tables from their owner too.
--
-- The system user and the "Discovered" project have fixed ids (see wfmon/db/rows.py):
-- executions found in Temporal that no user started are recorded as theirs.

INSERT INTO user_roles (name, description) VALUES
    ('admin', 'Administers the installation'),
    ('member', 'Builds and runs workflows'),
    ('system', 'wfmon itself: sync and statistics');

INSERT INTO component_visibility (name) VALUES ('private'), ('public');

INSERT INTO users (id, auth_user_id, email, display_name, role_id)
SELECT '00000000-0000-0000-0000-000000000001', NULL, 'system@wfmon.invalid', 'wfmon system', id
FROM user_roles WHERE name = 'system';

INSERT INTO projects (id, name, description, created_by) VALUES (
    '00000000-0000-0000-0000-000000000002',
    'Discovered',
    'Executions found in Temporal that were not started from a wfmon project',
    '00000000-0000-0000-0000-000000000001');
