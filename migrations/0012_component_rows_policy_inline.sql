-- The owner-read policy of component_executions, written inline.
--
-- 0004 called wfmon_owns_execution(workflow_execution_id) per row, which evaluates
-- wfmon_current_user_id() again for every row: a history page touching a 5,000-component
-- execution spent ~84 ms in the policy alone. The same rule as a correlated EXISTS with the
-- caller's id in an InitPlan ((SELECT ...), computed once per statement) is a primary-key
-- probe per row. Meaning unchanged: the caller started the execution.
DROP POLICY component_executions_owner_read ON component_executions;
CREATE POLICY component_executions_owner_read ON component_executions
    FOR SELECT TO wfmon_user
    USING (EXISTS (
        SELECT 1 FROM workflow_executions e
        WHERE e.id = component_executions.workflow_execution_id
          AND e.created_by = (SELECT wfmon_current_user_id())));
