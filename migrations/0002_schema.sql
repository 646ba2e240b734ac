-- The schema: the builder's base tables and wfmon's monitoring tables.
--
-- Ownership is explicit on every row a user can own (created_by -> users, or a parent that
-- has it) so that the row-level security policies in 0004 can be written as plain
-- predicates. Lookup tables use uuid ids plus a unique, CHECKed name.

-- Lookups -------------------------------------------------------------------------------

CREATE TABLE user_roles (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name IN ('admin', 'member', 'system')),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE component_visibility (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name IN ('private', 'public')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- People and what they own ------------------------------------------------------------

CREATE TABLE users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The id auth.uid() returns for this person. NULL only for the system user, whom
    -- nobody can log in as.
    auth_user_id uuid UNIQUE,
    email        text NOT NULL CHECK (email <> ''),
    display_name text NOT NULL DEFAULT '',
    role_id      uuid NOT NULL REFERENCES user_roles (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (name <> ''),
    description text NOT NULL DEFAULT '',
    created_by  uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (created_by, name)
);
CREATE INDEX projects_created_by_idx ON projects (created_by);

CREATE TABLE workflows (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_by      uuid NOT NULL REFERENCES users (id),
    name            text NOT NULL CHECK (name <> ''),
    description     text NOT NULL DEFAULT '',
    visibility_id   uuid NOT NULL REFERENCES component_visibility (id),
    -- The definition users edit now; every saved version is also in workflow_versions.
    current_version integer NOT NULL DEFAULT 1 CHECK (current_version >= 1),
    definition      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
CREATE INDEX workflows_created_by_idx ON workflows (created_by);
CREATE INDEX workflows_visibility_idx ON workflows (visibility_id);

-- Immutable snapshots, so an execution knows exactly which definition it ran.
CREATE TABLE workflow_versions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    definition  jsonb NOT NULL,
    created_by  uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id, version)
);

CREATE TABLE components (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL UNIQUE CHECK (name <> ''),
    display_name  text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    config_schema jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by    uuid NOT NULL REFERENCES users (id),
    visibility_id uuid NOT NULL REFERENCES component_visibility (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX components_created_by_idx ON components (created_by);

CREATE TABLE task_queues (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Executions (a cache of Temporal) ----------------------------------------------------

CREATE TABLE workflow_executions (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    temporal_namespace    text NOT NULL,
    temporal_workflow_id  text NOT NULL,
    temporal_run_id       text NOT NULL,
    -- First run of a continue-as-new chain (equals temporal_run_id for the first run).
    first_run_id          text,
    workflow_type         text NOT NULL,
    task_queue            text NOT NULL,
    status                text NOT NULL CHECK (status IN (
        'running', 'completed', 'failed', 'canceled', 'terminated', 'timed_out',
        'continued_as_new')),
    started_at            timestamptz NOT NULL,
    closed_at             timestamptz,
    duration_ms           bigint CHECK (duration_ms >= 0),
    created_by            uuid NOT NULL REFERENCES users (id),
    project_id            uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    workflow_id           uuid REFERENCES workflows (id) ON DELETE SET NULL,
    workflow_version      integer,
    input                 jsonb,
    output                jsonb,
    error_message         text,
    -- Sync bookkeeping. A lease (owner + expiry) instead of a sticky 'syncing' flag, so a
    -- crashed syncer never leaves an execution stuck: an expired lease is free to take.
    temporal_history_json jsonb,
    history_synced_at     timestamptz,
    history_sync_status   text NOT NULL DEFAULT 'pending'
                          CHECK (history_sync_status IN ('pending', 'synced', 'failed')),
    history_sync_error    text,
    sync_lease_owner      text,
    sync_lease_expires_at timestamptz,
    history_event_count   integer CHECK (history_event_count >= 0),
    history_bytes         bigint CHECK (history_bytes >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (temporal_namespace, temporal_workflow_id, temporal_run_id),
    CHECK (closed_at IS NULL OR closed_at >= started_at),
    CHECK ((sync_lease_owner IS NULL) = (sync_lease_expires_at IS NULL)),
    FOREIGN KEY (workflow_id, workflow_version)
        REFERENCES workflow_versions (workflow_id, version)
);
-- Execution history of a workflow, filtered by status, newest first.
CREATE INDEX workflow_executions_history_idx
    ON workflow_executions (workflow_id, status, started_at DESC);
CREATE INDEX workflow_executions_workflow_closed_idx
    ON workflow_executions (workflow_id, closed_at DESC);
-- Dagster partitions are windows of close time.
CREATE INDEX workflow_executions_closed_at_idx
    ON workflow_executions (closed_at) WHERE closed_at IS NOT NULL;
-- The sync coordinator looks for executions that still need a sync.
CREATE INDEX workflow_executions_sync_idx
    ON workflow_executions (history_sync_status, closed_at)
    WHERE history_sync_status <> 'synced';
CREATE INDEX workflow_executions_created_by_idx ON workflow_executions (created_by);
CREATE INDEX workflow_executions_project_idx ON workflow_executions (project_id, started_at DESC);

CREATE TABLE component_executions (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_execution_id       uuid NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    node_id                     text NOT NULL,
    component_id                uuid REFERENCES components (id) ON DELETE SET NULL,
    component_name              text,
    kind                        text NOT NULL DEFAULT 'activity'
                                CHECK (kind IN ('activity', 'local_activity', 'child_workflow')),
    activity_type               text,
    -- Event id of ActivityTaskScheduled (or the marker / child-initiated event): the
    -- stable key of one component run inside a history.
    scheduled_event_id          bigint NOT NULL,
    status                      text NOT NULL CHECK (status IN (
        'pending', 'running', 'retrying', 'completed', 'failed', 'canceled', 'timed_out')),
    started_at                  timestamptz,
    completed_at                timestamptz,
    duration_ms                 bigint CHECK (duration_ms >= 0),
    input_data                  jsonb,
    output_data                 jsonb,
    error_message               text,
    error_type                  text,
    retry_count                 integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    is_expected_retry           boolean NOT NULL DEFAULT false,
    temporal_activity_id        text,
    temporal_attempt            integer NOT NULL DEFAULT 1 CHECK (temporal_attempt >= 1),
    child_workflow_execution_id uuid REFERENCES workflow_executions (id) ON DELETE SET NULL,
    retry_policy                jsonb,
    retry_state                 text,
    next_retry_at               timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_execution_id, scheduled_event_id)
);
-- The UNIQUE index above serves "components by execution".
CREATE INDEX component_executions_node_idx ON component_executions (node_id);
CREATE INDEX component_executions_component_idx ON component_executions (component_id);

-- One row per activity attempt. Written by the worker as attempts start and end, which can
-- be before the execution row exists, so keyed by Temporal ids rather than a foreign key.
CREATE TABLE component_execution_attempts (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    temporal_namespace   text NOT NULL,
    temporal_workflow_id text NOT NULL,
    temporal_run_id      text NOT NULL,
    activity_id          text NOT NULL,  -- the node id for builder workflows
    attempt              integer NOT NULL CHECK (attempt >= 1),
    activity_type        text,
    started_at           timestamptz NOT NULL,
    ended_at             timestamptz,
    outcome              text NOT NULL DEFAULT 'running' CHECK (outcome IN (
        'running', 'completed', 'failed', 'canceled', 'timed_out')),
    failure_type         text,
    failure_message      text,
    failure_stack        text,
    worker_identity      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (temporal_namespace, temporal_workflow_id, temporal_run_id, activity_id, attempt),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);

-- Project connections (URLs stored encrypted, shown masked) ----------------------------

CREATE TABLE project_connections (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id               uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    connection_type          text NOT NULL CHECK (connection_type IN ('postgresql', 'redis')),
    name                     text NOT NULL CHECK (name <> ''),
    connection_url_encrypted bytea NOT NULL,
    encryption_key_id        text NOT NULL,
    masked_url               text NOT NULL,
    config                   jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by               uuid NOT NULL REFERENCES users (id),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
CREATE INDEX project_connections_type_idx ON project_connections (connection_type);

-- Statistics (written by the system, read by users) ---------------------------------

CREATE TABLE workflow_statistics (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id               uuid NOT NULL UNIQUE REFERENCES workflows (id) ON DELETE CASCADE,
    total_runs                integer NOT NULL DEFAULT 0 CHECK (total_runs >= 0),
    successful_runs           integer NOT NULL DEFAULT 0 CHECK (successful_runs >= 0),
    failed_runs               integer NOT NULL DEFAULT 0 CHECK (failed_runs >= 0),
    avg_duration_ms           bigint,
    min_duration_ms           bigint,
    max_duration_ms           bigint,
    most_used_component_id    uuid REFERENCES components (id) ON DELETE SET NULL,
    most_used_component_count integer NOT NULL DEFAULT 0,
    total_errors              integer NOT NULL DEFAULT 0 CHECK (total_errors >= 0),
    last_error_at             timestamptz,
    last_run_at               timestamptz,
    updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE project_statistics (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id                  uuid NOT NULL UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
    most_used_workflow_id       uuid REFERENCES workflows (id) ON DELETE SET NULL,
    most_used_workflow_count    integer NOT NULL DEFAULT 0,
    most_used_component_id      uuid REFERENCES components (id) ON DELETE SET NULL,
    most_used_component_count   integer NOT NULL DEFAULT 0,
    most_used_task_queue_id     uuid REFERENCES task_queues (id) ON DELETE SET NULL,
    most_used_task_queue_count  integer NOT NULL DEFAULT 0,
    total_executions            integer NOT NULL DEFAULT 0 CHECK (total_executions >= 0),
    longest_run_duration_ms     bigint,
    longest_run_workflow_id     uuid REFERENCES workflows (id) ON DELETE SET NULL,
    total_failures              integer NOT NULL DEFAULT 0 CHECK (total_failures >= 0),
    last_failure_at             timestamptz,
    last_execution_at           timestamptz,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
