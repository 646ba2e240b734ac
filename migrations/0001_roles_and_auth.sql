-- Roles and auth.uid(): everything row-level security relies on.
--
-- wfmon_user   every end-user request runs as this role (SET LOCAL ROLE), with the caller's
--              auth id in the transaction-local setting request.jwt.claim.sub.
-- wfmon_system the sync writer. Its policies test the CALLER (this role), never a row's owner.
--
-- Both are NOLOGIN, NOBYPASSRLS and own nothing, so RLS always applies to them. The role
-- that runs the migrations (current_user, e.g. `wfmon` or Supabase's `postgres`) owns the
-- tables and is granted both roles with SET (so it can switch to them) but without INHERIT
-- (so it never silently gains their privileges).
--
-- Roles are cluster-wide and other databases in the same cluster may have created them
-- already: create only when absent. The same goes for auth.uid(), which Supabase provides.

DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['wfmon_user', 'wfmon_system'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT NOBYPASSRLS', role_name);
        END IF;
        -- PostgreSQL 16+: a CREATEROLE role that creates a role becomes its admin but may
        -- not SET to it until it grants itself membership WITH SET.
        IF current_setting('server_version_num')::int >= 160000 THEN
            IF NOT pg_has_role(current_user, role_name, 'SET') THEN
                EXECUTE format('GRANT %I TO %I WITH SET TRUE, INHERIT FALSE', role_name, current_user);
            END IF;
        ELSIF NOT pg_has_role(current_user, role_name, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', role_name, current_user);
        END IF;
    END LOOP;
END
$roles$;

CREATE SCHEMA IF NOT EXISTS auth;

DO $auth$
BEGIN
    IF to_regprocedure('auth.uid()') IS NULL THEN
        -- Same body as Supabase's auth.uid(): the JWT subject of the current request, read
        -- from a setting the database layer sets with set_config(..., true) (transaction-local).
        EXECUTE $fn$
            CREATE FUNCTION auth.uid() RETURNS uuid
            LANGUAGE sql STABLE
            AS $body$
                SELECT coalesce(
                    nullif(current_setting('request.jwt.claim.sub', true), ''),
                    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
                )::uuid
            $body$
        $fn$;
    END IF;
END
$auth$;

GRANT USAGE ON SCHEMA auth TO wfmon_user, wfmon_system;
GRANT EXECUTE ON FUNCTION auth.uid() TO wfmon_user, wfmon_system;
GRANT USAGE ON SCHEMA public TO wfmon_user, wfmon_system;
