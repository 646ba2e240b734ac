-- The live channel's name becomes a secret (amends 0520).
--
-- PostgreSQL lets every role that can connect LISTEN on any channel, and wfmon_recorder's
-- URL (0550) is handed to users' own Temporal workers: on 0520's fixed channel
-- 'wfmon_live' such a worker would have seen the ids of every user's executions, projects
-- and workflows as they synced. The channel is now 'wfmon_live_' and 128 random bits made
-- here, kept in a table that only its owner reads. wfmon_live_channel() (SECURITY
-- DEFINER) tells it to wfmon_system and wfmon_user only: the writers whose statements
-- notify, and the web app's LISTEN connection, which switches to wfmon_user to ask (its
-- login role keeps no privilege of its own, see 0300). Another role's sessions see the
-- LISTEN statement in pg_stat_activity only as "<insufficient privilege>".

CREATE TABLE wfmon_live_channel_name (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    channel text NOT NULL
);
-- No grant: nobody but the owner (the function below) may read it. Row-level security is
-- forced like on every table; its one policy lets the owner read the row.
REVOKE ALL ON wfmon_live_channel_name FROM PUBLIC;
INSERT INTO wfmon_live_channel_name (channel)
VALUES ('wfmon_live_' || replace(gen_random_uuid()::text, '-', ''));
ALTER TABLE wfmon_live_channel_name ENABLE ROW LEVEL SECURITY;
ALTER TABLE wfmon_live_channel_name FORCE ROW LEVEL SECURITY;
CREATE POLICY wfmon_live_channel_name_read ON wfmon_live_channel_name FOR SELECT USING (true);

CREATE OR REPLACE FUNCTION public.wfmon_live_channel() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = public, pg_temp
AS $$ SELECT channel FROM public.wfmon_live_channel_name $$;

REVOKE EXECUTE ON FUNCTION public.wfmon_live_channel() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.wfmon_live_channel() TO wfmon_system, wfmon_user;
