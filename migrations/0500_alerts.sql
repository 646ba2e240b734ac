-- Alert rules and their delivery log (issue 13).
--
-- A rule belongs to a project and is managed by the project's owner only. Its channel
-- (webhook, Slack-compatible webhook, e-mail) has a secret part (URL, signing secret, SMTP
-- password) stored ONLY encrypted, with the keyring of project connections
-- (wfmon.connections.crypto), bound to the rule's id; users see channel_masked.
--
-- Rules are evaluated by the system (the Dagster sensor `alerts_sensor`, running as
-- wfmon_system): it reads the synced tables, records deliveries and sends them. The
-- values of `kind` and `channel_type` are wfmon.alerts.model's AlertKind / ChannelType
-- (tests/alerts/test_model.py keeps them equal).

CREATE TABLE alert_rules (
    -- Chosen by wfmon before encrypting: the channel's ciphertext is bound to this id.
    id                       uuid PRIMARY KEY,
    project_id               uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- NULL: every workflow of the project.
    workflow_id              uuid REFERENCES workflows (id) ON DELETE CASCADE,
    created_by               uuid NOT NULL REFERENCES users (id),
    name                     text NOT NULL CHECK (name <> '' AND length(name) <= 200),
    kind                     text NOT NULL CHECK (kind IN (
        'execution_failed', 'unexpected_retry', 'new_failure_group', 'failure_rate',
        'running_execution')),
    params                   jsonb NOT NULL DEFAULT '{}'::jsonb,
    channel_type             text NOT NULL CHECK (channel_type IN ('webhook', 'slack', 'email')),
    -- The channel's parts that are not secret (e-mail addresses, SMTP host and port).
    channel_config           jsonb NOT NULL DEFAULT '{}'::jsonb,
    channel_masked           text NOT NULL,
    channel_secret_encrypted bytea NOT NULL,
    encryption_key_id        text NOT NULL,
    quiet_period_seconds     integer NOT NULL DEFAULT 0
                             CHECK (quiet_period_seconds BETWEEN 0 AND 604800),
    enabled                  boolean NOT NULL DEFAULT true,
    -- Evaluation watermark: rows written up to here were looked at (written by the system).
    scanned_until            timestamptz NOT NULL DEFAULT now(),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name),
    UNIQUE (id, project_id)
);
CREATE INDEX alert_rules_enabled_idx ON alert_rules (project_id) WHERE enabled;

CREATE TABLE alert_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id         uuid NOT NULL,
    project_id      uuid NOT NULL,
    -- One event (an execution closing, a group appearing, ...): looked at once per rule.
    event_key       text NOT NULL,
    -- The subject the alert is about: alerted once per rule (see the partial index below).
    dedupe_key      text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    -- Why it failed (sanitized: no URL, no secret) or why it was suppressed.
    reason          text,
    is_test         boolean NOT NULL DEFAULT false,
    -- The alert as sent (title, text, link, facts): never a secret.
    alert           jsonb NOT NULL,
    execution_id    uuid REFERENCES workflow_executions (id) ON DELETE SET NULL,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the next delivery attempt is due; NULL: nothing more to do (sent, suppressed,
    -- test, or given up).
    next_attempt_at timestamptz,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (rule_id, project_id) REFERENCES alert_rules (id, project_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX alert_deliveries_event_key ON alert_deliveries (rule_id, event_key);
-- Each alert delivered once: one delivery (pending, sent or failed) per rule and subject.
CREATE UNIQUE INDEX alert_deliveries_once ON alert_deliveries (rule_id, dedupe_key)
    WHERE status <> 'suppressed';
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX alert_deliveries_project_idx ON alert_deliveries (project_id, created_at DESC);
CREATE INDEX alert_deliveries_rule_idx ON alert_deliveries (rule_id, created_at DESC);

-- The evaluator looks at a project's execution rows written since a rule's watermark.
CREATE INDEX IF NOT EXISTS workflow_executions_project_updated_idx
    ON workflow_executions (project_id, updated_at);

ALTER TABLE alert_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_rules FORCE ROW LEVEL SECURITY;
ALTER TABLE alert_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_deliveries FORCE ROW LEVEL SECURITY;

-- Rules: the project's owner manages them (never the watermark); the system reads them and
-- moves the watermark only.
GRANT SELECT, DELETE ON alert_rules TO wfmon_user;
GRANT INSERT (id, project_id, workflow_id, created_by, name, kind, params, channel_type,
              channel_config, channel_masked, channel_secret_encrypted, encryption_key_id,
              quiet_period_seconds, enabled)
    ON alert_rules TO wfmon_user;
GRANT UPDATE (workflow_id, name, kind, params, channel_type, channel_config, channel_masked,
              channel_secret_encrypted, encryption_key_id, quiet_period_seconds, enabled,
              updated_at)
    ON alert_rules TO wfmon_user;
GRANT SELECT ON alert_rules TO wfmon_system;
GRANT UPDATE (scanned_until) ON alert_rules TO wfmon_system;

CREATE POLICY alert_rules_owner ON alert_rules FOR ALL TO wfmon_user
    USING (wfmon_owns_project(project_id))
    WITH CHECK (wfmon_owns_project(project_id)
                AND created_by = (SELECT wfmon_current_user_id())
                AND (workflow_id IS NULL OR EXISTS (
                    SELECT 1 FROM workflows w
                    WHERE w.id = alert_rules.workflow_id
                      AND w.project_id = alert_rules.project_id)));
CREATE POLICY alert_rules_system_read ON alert_rules FOR SELECT TO wfmon_system USING (true);
CREATE POLICY alert_rules_system_scan ON alert_rules FOR UPDATE TO wfmon_system
    USING (true) WITH CHECK (true);

-- Deliveries: the project's owner reads them and records test alerts; the system writes
-- the rest.
GRANT SELECT, INSERT ON alert_deliveries TO wfmon_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON alert_deliveries TO wfmon_system;

CREATE POLICY alert_deliveries_owner_read ON alert_deliveries FOR SELECT TO wfmon_user
    USING (wfmon_owns_project(project_id));
CREATE POLICY alert_deliveries_owner_test ON alert_deliveries FOR INSERT TO wfmon_user
    WITH CHECK (is_test AND next_attempt_at IS NULL AND wfmon_owns_project(project_id));
CREATE POLICY alert_deliveries_system ON alert_deliveries FOR ALL TO wfmon_system
    USING (true) WITH CHECK (true);
