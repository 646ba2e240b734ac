"""Row types read from and written to the database, and the ids the seed migration fixes.

Dataclasses mirror table columns by name, so a row dict maps onto them with ``Cls(**row)``.
JSON columns (``jsonb``) are typed ``Json``: whatever ``json.loads`` can return. Statuses
are wfmon.model's :class:`ExecutionStatus` / :class:`ComponentStatus` (``StrEnum``s):
a status read from the database is a plain string that tests equal to its member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from wfmon.model.vocabulary import ComponentStatus, ExecutionStatus

Json = Any

#: The user wfmon itself acts as (seeded by migrations/0003_seed.sql; nobody logs in as it).
SYSTEM_USER_ID = UUID("00000000-0000-0000-0000-000000000001")
#: Where executions go that Temporal knows but no wfmon user started.
DISCOVERED_PROJECT_ID = UUID("00000000-0000-0000-0000-000000000002")

RoleName = Literal["admin", "member", "system"]
Visibility = Literal["private", "public"]
ComponentKind = Literal["activity", "local_activity", "child_workflow"]
AttemptOutcome = Literal["running", "completed", "failed", "canceled", "timed_out"]
HistorySyncStatus = Literal["pending", "synced", "failed"]


@dataclass(frozen=True)
class User:
    id: UUID
    auth_user_id: UUID | None
    email: str
    display_name: str
    role: RoleName


@dataclass(frozen=True)
class Project:
    id: UUID
    name: str
    created_by: UUID


@dataclass(frozen=True)
class Workflow:
    id: UUID
    project_id: UUID
    created_by: UUID
    name: str
    visibility: Visibility
    current_version: int
    definition: Json


@dataclass(frozen=True)
class ExecutionRow:
    """One Temporal run as sync writes it (sync bookkeeping columns are written elsewhere).

    ``created_by`` / ``project_id`` default to the system user and the Discovered project;
    they are only used when the row is first inserted, never to re-own an existing row.
    """

    temporal_namespace: str
    temporal_workflow_id: str
    temporal_run_id: str
    workflow_type: str
    task_queue: str
    status: ExecutionStatus
    started_at: datetime
    closed_at: datetime | None = None
    duration_ms: int | None = None
    first_run_id: str | None = None
    created_by: UUID = SYSTEM_USER_ID
    project_id: UUID = DISCOVERED_PROJECT_ID
    workflow_id: UUID | None = None
    workflow_version: int | None = None
    input: Json = None
    output: Json = None
    error_message: str | None = None


@dataclass(frozen=True)
class ComponentExecutionRow:
    """One component (node) run inside an execution, keyed by ``scheduled_event_id``."""

    node_id: str
    scheduled_event_id: int
    status: ComponentStatus
    kind: ComponentKind = "activity"
    component_id: UUID | None = None
    component_name: str | None = None
    activity_type: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None
    input_data: Json = None
    output_data: Json = None
    error_message: str | None = None
    error_type: str | None = None
    retry_count: int = 0
    is_expected_retry: bool = False
    temporal_activity_id: str | None = None
    temporal_attempt: int = 1
    child_workflow_execution_id: UUID | None = None
    retry_policy: Json = None
    retry_state: str | None = None
    next_retry_at: datetime | None = None


@dataclass(frozen=True)
class AttemptRow:
    """One attempt of one activity, as the worker saw it start or end."""

    temporal_namespace: str
    temporal_workflow_id: str
    temporal_run_id: str
    activity_id: str
    attempt: int
    started_at: datetime
    activity_type: str | None = None
    ended_at: datetime | None = None
    outcome: AttemptOutcome = "running"
    failure_type: str | None = None
    failure_message: str | None = None
    failure_stack: str | None = None
    worker_identity: str | None = None


@dataclass(frozen=True)
class ListedExecution:
    """An execution as a workflow's execution list shows it (no payloads, no history)."""

    id: UUID
    temporal_workflow_id: str
    temporal_run_id: str
    workflow_type: str
    status: ExecutionStatus
    started_at: datetime
    closed_at: datetime | None
    duration_ms: int | None
    workflow_version: int | None
    history_sync_status: HistorySyncStatus
    error_message: str | None


@dataclass(frozen=True)
class ExecutionPage:
    items: list[ListedExecution]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True)
class WorkflowStatistics:
    workflow_id: UUID
    total_runs: int
    successful_runs: int
    failed_runs: int
    avg_duration_ms: int | None
    min_duration_ms: int | None
    max_duration_ms: int | None
    most_used_component_id: UUID | None
    most_used_component_count: int
    total_errors: int
    last_error_at: datetime | None
    last_run_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class ProjectStatistics:
    project_id: UUID
    most_used_workflow_id: UUID | None
    most_used_workflow_count: int
    most_used_component_id: UUID | None
    most_used_component_count: int
    most_used_task_queue_id: UUID | None
    most_used_task_queue_count: int
    total_executions: int
    longest_run_duration_ms: int | None
    longest_run_workflow_id: UUID | None
    total_failures: int
    last_failure_at: datetime | None
    last_execution_at: datetime | None
    updated_at: datetime
