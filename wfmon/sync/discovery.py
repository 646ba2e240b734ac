"""Discovery: list executions through Temporal's visibility API.

The dev server rejects ``ORDER BY`` in visibility queries, so listings are filtered by
time window in the query and sorted here. Windows are half-open ``(after, until]`` on
close time (or start time for running executions), which is what a cursor needs: an
execution closing exactly at the cursor was in the previous window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from wfmon.db import Database
from wfmon.db import sync as sync_rows
from wfmon.db.database import DbConnection
from wfmon.db.rows import ExecutionRow
from wfmon.model import ExecutionStatus
from wfmon.runtime.client import (
    WFMON_DEFINITION_VERSION,
    WFMON_PROJECT_ID,
    WFMON_USER_ID,
    WFMON_WORKFLOW_ID,
)
from wfmon.sync.messages import ExecutionRef

#: Temporal's execution status -> wfmon's ``workflow_executions.status``.
EXECUTION_STATUS: dict[WorkflowExecutionStatus, ExecutionStatus] = {
    WorkflowExecutionStatus.RUNNING: ExecutionStatus.RUNNING,
    WorkflowExecutionStatus.COMPLETED: ExecutionStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: ExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: ExecutionStatus.CANCELED,
    WorkflowExecutionStatus.TERMINATED: ExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.CONTINUED_AS_NEW: ExecutionStatus.CONTINUED_AS_NEW,
    WorkflowExecutionStatus.TIMED_OUT: ExecutionStatus.TIMED_OUT,
}


@dataclass(frozen=True)
class DiscoveredExecution:
    """One execution as visibility lists it (no history read)."""

    ref: ExecutionRef
    workflow_type: str
    task_queue: str
    status: ExecutionStatus
    started_at: datetime
    closed_at: datetime | None
    #: wfmon ids from the builder's search attributes (None for other workflows).
    wfmon_workflow_id: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    definition_version: int | None = None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def visibility_query(
    *,
    closed_after: datetime | None = None,
    closed_until: datetime | None = None,
    running: bool = False,
    workflow_types: Sequence[str] = (),
) -> str:
    """The visibility query for one discovery window (parameters are quoted, not pasted)."""
    clauses = []
    if running:
        clauses.append("ExecutionStatus = 'Running'")
    if closed_after is not None:
        clauses.append(f"CloseTime > '{_iso(closed_after)}'")
    if closed_until is not None:
        clauses.append(f"CloseTime <= '{_iso(closed_until)}'")
    if workflow_types:
        quoted = ", ".join("'" + t.replace("'", "") + "'" for t in workflow_types)
        clauses.append(f"WorkflowType IN ({quoted})")
    return " AND ".join(clauses)


async def discover(
    client: Client,
    *,
    closed_after: datetime | None = None,
    closed_until: datetime | None = None,
    running: bool = False,
    workflow_types: Sequence[str] = (),
    exclude_task_queues: Sequence[str] = (),
    limit: int | None = None,
) -> list[DiscoveredExecution]:
    """Executions in the window, oldest close (or start, for running ones) first.

    ``exclude_task_queues`` leaves out wfmon's own system workflows (the sync queue).
    """
    query = visibility_query(
        closed_after=closed_after,
        closed_until=closed_until,
        running=running,
        workflow_types=workflow_types,
    )
    found: list[DiscoveredExecution] = []
    async for wf in client.list_workflows(query or None, page_size=1000, limit=limit):
        if wf.task_queue in exclude_task_queues:
            continue
        found.append(_discovered(client.namespace, wf))
    found.sort(key=lambda d: (d.closed_at or d.started_at, d.ref.workflow_id, d.ref.run_id))
    return found


def _discovered(namespace: str, wf: WorkflowExecution) -> DiscoveredExecution:
    attrs = wf.typed_search_attributes
    return DiscoveredExecution(
        ref=ExecutionRef(namespace=namespace, workflow_id=wf.id, run_id=wf.run_id),
        workflow_type=wf.workflow_type,
        task_queue=wf.task_queue,
        status=(
            EXECUTION_STATUS.get(wf.status, ExecutionStatus.RUNNING)
            if wf.status
            else ExecutionStatus.RUNNING
        ),
        started_at=wf.start_time,
        closed_at=wf.close_time,
        wfmon_workflow_id=attrs.get(WFMON_WORKFLOW_ID),
        project_id=attrs.get(WFMON_PROJECT_ID),
        user_id=attrs.get(WFMON_USER_ID),
        definition_version=attrs.get(WFMON_DEFINITION_VERSION),
    )


def record_discovered(db: Database, found: Sequence[DiscoveredExecution]) -> int:
    """Upsert ``workflow_executions`` rows for ``found`` (one transaction, as the system).

    New rows start with ``history_sync_status = 'pending'``; rows already synced keep
    their data (the next sync refreshes them). Returns how many were written.
    """
    with db.as_system() as conn:
        for d in found:
            upsert_discovered(conn, d)
    return len(found)


def upsert_discovered(conn: DbConnection, d: DiscoveredExecution) -> UUID:
    """Upsert one execution row (system unit of work) with its owner; return its id."""
    return sync_rows.upsert_owned_execution(
        conn,
        ExecutionRow(
            temporal_namespace=d.ref.namespace,
            temporal_workflow_id=d.ref.workflow_id,
            temporal_run_id=d.ref.run_id,
            workflow_type=d.workflow_type,
            task_queue=d.task_queue,
            status=d.status,
            started_at=d.started_at,
            closed_at=d.closed_at,
            duration_ms=(
                int((d.closed_at - d.started_at).total_seconds() * 1000) if d.closed_at else None
            ),
        ),
        wfmon_workflow_id=d.wfmon_workflow_id,
        project_id=d.project_id,
        user_id=d.user_id,
        definition_version=d.definition_version,
    )
