-- Failure groups, paged (issue 12): the page and the API list a project's (or one
-- workflow's) groups newest first or biggest first, one page at a time with the total.
--
-- Each order is total (ties broken by the primary key), so a page boundary never drops or
-- repeats a group, and each has an index that returns it already sorted: reading page n is
-- an index scan of (n * page size) entries, never a sort of every group. The project
-- indexes lead with project_id, the workflow ones with workflow_id (the page's workflow
-- filter); workflow_id is in every index, so the owner-only read policy (0410) and the
-- per-workflow counts of the filter need no table visit beyond the row check.
--
-- They replace 0410's two-column indexes, which sorted only by the first key.

DROP INDEX IF EXISTS failure_groups_project_seen_idx;
DROP INDEX IF EXISTS failure_groups_project_count_idx;
DROP INDEX IF EXISTS failure_groups_workflow_seen_idx;

CREATE INDEX IF NOT EXISTS failure_groups_project_newest_idx ON failure_groups
    (project_id, last_seen DESC, failures DESC, workflow_id, node_id, fingerprint);
CREATE INDEX IF NOT EXISTS failure_groups_project_biggest_idx ON failure_groups
    (project_id, failures DESC, last_seen DESC, workflow_id, node_id, fingerprint);
CREATE INDEX IF NOT EXISTS failure_groups_workflow_newest_idx ON failure_groups
    (workflow_id, last_seen DESC, failures DESC, node_id, fingerprint);
CREATE INDEX IF NOT EXISTS failure_groups_workflow_biggest_idx ON failure_groups
    (workflow_id, failures DESC, last_seen DESC, node_id, fingerprint);
