"""Sync activities: stream one execution's history, read it, write it in one transaction.

The history never crosses a Temporal payload: ``sync_execution`` fetches it page by page
inside the activity (heartbeating per page), feeds each page to the history reader, and
writes the execution row, its component rows, the history JSON and the sync status in a
single ``as_system`` transaction. A lease (owner + expiry) on the execution row keeps two
syncers from writing the same execution; a crashed syncer's lease expires.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from google.protobuf.json_format import MessageToDict
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from wfmon.db import Database
from wfmon.db.executions import (
    mark_history_sync_failed,
    mark_history_synced,
    replace_component_executions,
    upsert_execution,
)
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.history import ComponentExecution, HistoryReader, HistoryReport, ReadOptions
from wfmon.sync import store
from wfmon.sync.discovery import from_description, upsert_discovered
from wfmon.sync.messages import ExecutionRef, SyncFailure, SyncOutcome, SyncResult


@dataclass(frozen=True)
class SyncOptions:
    #: Events per history page requested from Temporal.
    page_size: int = 1000
    #: Lease length; renewed on every page, so only a dead syncer lets it lapse.
    lease_seconds: float = 60.0
    #: Store the full history as JSON (``temporal_history_json``) for debugging.
    store_history_json: bool = True
    #: Cap per decoded payload stored in component rows.
    payload_limit_bytes: int = 64 * 1024


class SyncActivities:
    """The activities of the sync task queue, bound to a Temporal client and the database."""

    def __init__(self, client: Client, db: Database, options: SyncOptions | None = None) -> None:
        self._client = client
        self._db = db
        self._options = options or SyncOptions()

    @activity.defn(name="sync_execution")
    async def sync_execution(self, execution: ExecutionRef) -> SyncResult:
        """Sync one execution. Idempotent: running it again rewrites the same rows."""
        started = time.monotonic()
        description = await self._describe(execution)
        info = description.workflow_execution_info
        owner_id = _lease_owner()

        execution_id = await asyncio.to_thread(self._register, execution, description)
        await self._take_lease(execution_id, owner_id)

        reader = HistoryReader(
            options=ReadOptions(
                namespace=execution.namespace,
                payload_limit_bytes=self._options.payload_limit_bytes,
            )
        )
        events_json: list[dict[str, Any]] | None = [] if self._options.store_history_json else None
        history_bytes = 0
        events_read = 0
        token = b""
        while True:
            page = await self._client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=execution.namespace,
                    execution=WorkflowExecution(
                        workflow_id=execution.workflow_id, run_id=execution.run_id
                    ),
                    next_page_token=token,
                    maximum_page_size=self._options.page_size,
                )
            )
            history_bytes += page.history.ByteSize()
            reader.feed(page.history.events)
            events_read += len(page.history.events)
            if events_json is not None:
                events_json.extend(MessageToDict(e) for e in page.history.events)
            activity.heartbeat(events_read)
            await self._take_lease(execution_id, owner_id)  # renew
            token = page.next_page_token
            if not token:
                break

        running = info.status == WorkflowExecutionStatus.RUNNING.value
        pending = list(description.pending_activities) if running else []
        report = reader.finish(pending)
        written = await asyncio.to_thread(
            self._write, execution, execution_id, owner_id, report, events_json, history_bytes
        )
        return SyncResult(
            execution=execution,
            outcome=SyncOutcome.SYNCED,
            execution_status=report.execution.status.value,
            still_running=report.execution.status.value == "running",
            component_count=written,
            event_count=report.execution.event_count,
            history_bytes=history_bytes,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    @activity.defn(name="record_sync_failure")
    async def record_sync_failure(self, failure: SyncFailure) -> None:
        """Keep the error on the execution row (for the user) and free its lease."""

        def write() -> None:
            with self._db.as_system() as conn:
                row = conn.execute(
                    "SELECT id FROM workflow_executions WHERE temporal_namespace = %s "
                    "AND temporal_workflow_id = %s AND temporal_run_id = %s",
                    (
                        failure.execution.namespace,
                        failure.execution.workflow_id,
                        failure.execution.run_id,
                    ),
                ).fetchone()
                if row is not None:
                    mark_history_sync_failed(conn, row["id"], failure.error[:4000])
                    conn.execute(
                        "UPDATE workflow_executions SET sync_lease_owner = NULL, "
                        "sync_lease_expires_at = NULL WHERE id = %s",
                        (row["id"],),
                    )

        await asyncio.to_thread(write)

    # -- steps -----------------------------------------------------------------------

    async def _describe(self, execution: ExecutionRef) -> DescribeWorkflowExecutionResponse:
        try:
            return await self._client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=execution.namespace,
                    execution=WorkflowExecution(
                        workflow_id=execution.workflow_id, run_id=execution.run_id
                    ),
                )
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ApplicationError(
                    f"execution {execution.workflow_id} / {execution.run_id} does not exist "
                    f"in namespace {execution.namespace}",
                    type="ExecutionNotFound",
                    non_retryable=True,
                ) from None
            raise

    def _register(self, execution: ExecutionRef, d: DescribeWorkflowExecutionResponse) -> UUID:
        """Upsert the execution row from its description (so the lease has a row to live on)."""
        with self._db.as_system() as conn:
            return upsert_discovered(conn, from_description(execution.namespace, d))

    async def _take_lease(self, execution_id: UUID, owner_id: str) -> None:
        def take() -> bool:
            with self._db.as_system() as conn:
                return store.acquire_lease(
                    conn, execution_id, owner_id, self._options.lease_seconds
                )

        if not await asyncio.to_thread(take):
            # Another syncer holds a live lease: retry later (the activity's retry policy).
            raise ApplicationError(
                "another sync of this execution is in progress", type="SyncLeaseHeld"
            )

    def _write(
        self,
        execution: ExecutionRef,
        execution_id: UUID,
        owner_id: str,
        report: HistoryReport,
        events_json: list[dict[str, Any]] | None,
        history_bytes: int,
    ) -> int:
        """One transaction: execution row, component rows, history JSON, status, lease."""
        summary = report.execution
        with self._db.as_system() as conn:
            owner = store.resolve_owner(
                conn,
                namespace=execution.namespace,
                workflow_type=summary.workflow_type or "unknown",
                wfmon_workflow_id=summary.wfmon_workflow_id,
                project_id=summary.project_id,
                user_id=summary.user_id,
                definition_version=summary.definition_version,
            )
            upsert_execution(
                conn,
                ExecutionRow(
                    temporal_namespace=execution.namespace,
                    temporal_workflow_id=execution.workflow_id,
                    temporal_run_id=execution.run_id,
                    first_run_id=summary.first_execution_run_id,
                    workflow_type=summary.workflow_type or "unknown",
                    task_queue=summary.task_queue or "",
                    status=summary.status.value,
                    started_at=summary.started_at,  # type: ignore[arg-type]
                    closed_at=summary.closed_at,
                    duration_ms=summary.duration_ms,
                    created_by=owner.created_by,
                    project_id=owner.project_id,
                    workflow_id=owner.workflow_id,
                    workflow_version=owner.workflow_version,
                    input=summary.input_data,
                    output=summary.output_data,
                    error_message=summary.error_message,
                ),
            )
            components = store.component_ids(conn)
            children = store.execution_ids(
                conn,
                execution.namespace,
                [
                    (c.child_workflow_id, c.child_run_id)
                    for c in report.components
                    if c.child_workflow_id and c.child_run_id
                ],
            )
            rows = [_component_row(c, components, children) for c in report.components]
            count = replace_component_executions(conn, execution_id, rows)
            mark_history_synced(
                conn,
                execution_id,
                history_json={"events": events_json} if events_json is not None else None,
                event_count=summary.event_count,
                history_bytes=history_bytes,
            )
            if not store.release_lease(conn, execution_id, owner_id):
                # Our lease lapsed and another syncer took over: roll everything back.
                raise ApplicationError("sync lease lost before commit", type="SyncLeaseLost")
            return count


# -- mapping --------------------------------------------------------------------------------


def _lease_owner() -> str:
    info = activity.info()
    return f"{info.workflow_id}/{info.workflow_run_id}"


def _component_row(
    c: ComponentExecution,
    components: dict[str, UUID],
    children: dict[tuple[str, str], UUID],
) -> ComponentExecutionRow:
    child = (c.child_workflow_id or "", c.child_run_id or "")
    return ComponentExecutionRow(
        node_id=c.node_id,
        scheduled_event_id=c.scheduled_event_id,
        status=c.status.value,
        kind=c.kind.value,
        component_id=components.get(c.component_name),
        component_name=c.component_name,
        activity_type=c.activity_type,
        started_at=c.started_at,
        completed_at=c.completed_at,
        duration_ms=c.duration_ms,
        input_data=c.input_data,
        output_data=c.output_data,
        error_message=c.error_message,
        error_type=c.error_type,
        retry_count=c.retry_count,
        is_expected_retry=c.is_expected_retry,
        temporal_activity_id=c.temporal_activity_id,
        temporal_attempt=max(1, c.temporal_attempt),
        child_workflow_execution_id=children.get(child),
        retry_policy=c.retry_policy,
        retry_state=c.retry_state,
        next_retry_at=c.next_retry_at,
    )
