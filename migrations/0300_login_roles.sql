-- Login roles that own nothing (Supabase's "authenticator"), and no temporary tables for
-- end users.
--
-- The role running the migrations owns every table. wfmon's processes never log in as it:
--   wfmon_authenticator  worker, sync, Dagster code, CLI; may only switch to wfmon_user and
--                        wfmon_system
--   wfmon_web            the web app; may only switch to wfmon_user
-- Both are NOINHERIT and are granted nothing else, so outside a unit of work (after RESET
-- ROLE, say) they can read and change nothing, and neither can become the owner: a
-- statement injected into a unit of work cannot turn row-level security off.
--
-- The roles are created here NOLOGIN when absent; whoever runs the server gives them LOGIN
-- and a password (the embedded server does; see docs/architecture/database.md).

DO $roles$
DECLARE
    login_role text;
    granted text;
BEGIN
    FOREACH login_role IN ARRAY ARRAY['wfmon_authenticator', 'wfmon_web'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login_role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT NOBYPASSRLS', login_role);
        END IF;
    END LOOP;
    FOR login_role, granted IN
        VALUES ('wfmon_authenticator', 'wfmon_user'),
               ('wfmon_authenticator', 'wfmon_system'),
               ('wfmon_web', 'wfmon_user')
    LOOP
        IF current_setting('server_version_num')::int >= 160000 THEN
            EXECUTE format('GRANT %I TO %I WITH INHERIT FALSE, SET TRUE', granted, login_role);
        ELSE
            EXECUTE format('GRANT %I TO %I', granted, login_role);
        END IF;
    END LOOP;
END
$roles$;

-- Temporary tables are searched before the real ones: a temp table named like a real one,
-- left on a pooled connection, would capture the next unit of work's reads and writes.
-- Only wfmon_system (dbt merges through temporary tables) may create them.
DO $temp$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO wfmon_system', current_database());
END
$temp$;
