-- No existence oracles through unique constraints.
--
-- A unique violation tells the writer that a conflicting row exists, even one that RLS
-- hides from them. So:
--   * component names are unique per owner, not across everyone: user A naming a component
--     like user B's private one learns nothing (the sync resolves an activity's component
--     by name, built-in ones first: wfmon/sync/store.component_ids);
--   * users never write execution rows at all. An execution's owner comes from Temporal
--     (the builder's search attributes), recorded by the system role; a user-side insert
--     could only probe for, or claim, somebody else's Temporal ids.

ALTER TABLE components DROP CONSTRAINT components_name_key;
ALTER TABLE components ADD CONSTRAINT components_owner_name_key UNIQUE (created_by, name);

DROP POLICY workflow_executions_owner_insert ON workflow_executions;
REVOKE INSERT ON workflow_executions FROM wfmon_user;
