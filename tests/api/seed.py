"""Test and benchmark data for the web app: users with tokens, and synthetic executions.

Synthetic executions are written with the sync's own writers (``upsert_execution``,
``replace_component_executions``, ``insert_attempts``, ``mark_history_synced``) as the
system role, exactly as a sync would; they stand in for Temporal runs only where a real
run would take minutes (5,000 components) or a status the dev server cannot easily
produce on demand (timed out).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from wfmon.api.jwt import dev_token
from wfmon.db import Database
from wfmon.db.accounts import create_project, create_user, create_workflow
from wfmon.db.executions import (
    insert_attempts,
    mark_history_synced,
    replace_component_executions,
    upsert_execution,
)
from wfmon.db.rows import (
    AttemptRow,
    ComponentExecutionRow,
    ExecutionRow,
    ExecutionStatus,
    Project,
    User,
    Workflow,
)

RETRY_3 = {
    "initial_interval": "100ms",
    "backoff_coefficient": 1.0,
    "maximum_interval": "100ms",
    "maximum_attempts": 3,
    "non_retryable_error_types": [],
}


@dataclass(frozen=True)
class Person:
    """A user with a project, a workflow and a dev token."""

    user: User
    project: Project
    workflow: Workflow
    token: str

    @property
    def auth_user_id(self) -> UUID:
        assert self.user.auth_user_id is not None
        return self.user.auth_user_id


def make_person(
    db: Database, name: str, secret: str, definition: dict[str, Any] | None = None
) -> Person:
    auth_id = uuid.uuid4()
    email = f"{name}-{auth_id.hex[:6]}@example.com"
    with db.as_system() as conn:
        user = create_user(conn, auth_user_id=auth_id, email=email, display_name=name)
    with db.as_user(auth_id) as conn:
        project = create_project(conn, name=f"{name} project", created_by=user.id)
        workflow = create_workflow(
            conn,
            project_id=project.id,
            created_by=user.id,
            name=f"{name} orders",
            definition=definition or {},
        )
    return Person(user, project, workflow, dev_token(str(auth_id), secret, email=email))


def seed_execution(
    db: Database,
    owner: Person,
    *,
    components: int,
    status: ExecutionStatus = "completed",
    retried_every: int = 10,
    payload: Any = None,
    started_at: datetime | None = None,
) -> UUID:
    """A synced, closed execution of ``owner``'s workflow with ``components`` component
    rows; every ``retried_every``-th component needed one (expected) retry."""
    t0 = started_at or datetime.now(UTC) - timedelta(minutes=10)
    run_id = str(uuid.uuid4())
    wf_id = f"seeded-{uuid.uuid4().hex[:12]}"
    step = timedelta(milliseconds=40)
    closed = t0 + step * (components + 2)
    row = ExecutionRow(
        temporal_namespace="default",
        temporal_workflow_id=wf_id,
        temporal_run_id=run_id,
        workflow_type="WfmonBuilderWorkflow",
        task_queue="wfmon-seeded",
        status=status,
        started_at=t0,
        closed_at=None if status == "running" else closed,
        duration_ms=None if status == "running" else int((closed - t0).total_seconds() * 1000),
        created_by=owner.user.id,
        project_id=owner.project.id,
        workflow_id=owner.workflow.id,
        workflow_version=1,
        input={"order": 1},
        output=None if status != "completed" else {"ok": True},
        error_message="deadline exceeded" if status == "timed_out" else None,
    )
    rows: list[ComponentExecutionRow] = []
    attempts: list[AttemptRow] = []
    data = payload if payload is not None else {"n": 1, "text": "x" * 200}
    for i in range(components):
        start = t0 + step * (i + 1)
        retried = retried_every and i % retried_every == 0
        node = f"node-{i:05d}"
        rows.append(
            ComponentExecutionRow(
                node_id=node,
                scheduled_event_id=5 + i * 6,
                status="completed",
                component_name="transform",
                activity_type="transform",
                started_at=start,
                completed_at=start + step,
                duration_ms=40,
                input_data={"i": i, **data},
                output_data={"i": i, "ok": True},
                retry_count=1 if retried else 0,
                is_expected_retry=bool(retried),
                temporal_activity_id=node,
                temporal_attempt=2 if retried else 1,
                retry_policy=RETRY_3,
            )
        )
        if retried:
            mid = start + step / 2
            attempts += [
                AttemptRow(
                    "default",
                    wf_id,
                    run_id,
                    node,
                    1,
                    start,
                    "transform",
                    mid - step / 8,
                    "failed",
                    "FlakyError",
                    "first attempt fails",
                ),
                AttemptRow(
                    "default", wf_id, run_id, node, 2, mid, "transform", start + step, "completed"
                ),
            ]
    with db.as_system() as conn:
        execution_id = upsert_execution(conn, row)
        replace_component_executions(conn, execution_id, rows)
        insert_attempts(conn, attempts)
        mark_history_synced(
            conn, execution_id, history_json={"events": []}, event_count=0, history_bytes=0
        )
    return execution_id
