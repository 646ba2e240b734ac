"""Sync activities: stream each execution's history, read it, write it in one transaction.

A history never crosses a Temporal payload: ``sync_executions`` fetches it page by page
inside the activity (heartbeating after a page, at most once a second), feeds each page to
the history reader, and writes the execution row, its component rows, the stored history
and the sync status in one ``as_system`` transaction (several executions may share one;
each is written whole). Running it again rewrites the same rows.

The history is stored as Temporal's protobuf bytes; JSON is produced on demand (see
``migrations/0011_history_protobuf.sql``) unless ``store_history_json`` is set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from google.protobuf.json_format import MessageToDict
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from wfmon.db import Database
from wfmon.db import sync as sync_rows
from wfmon.db.database import DbConnection
from wfmon.db.details import find_execution
from wfmon.db.executions import mark_history_sync_failed
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.history import (
    ComponentExecution,
    HistoryFormatError,
    HistoryReader,
    HistoryReport,
    ReadOptions,
)
from wfmon.model import ExecutionStatus
from wfmon.sync.messages import ExecutionRef, SyncBatch, SyncFailures, SyncOutcome, SyncResult

#: Events after which a run is closed (no pending activities to ask for).
_CLOSING_EVENTS = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)


@dataclass(frozen=True)
class SyncOptions:
    #: Events per history page requested from Temporal.
    page_size: int = 1000
    #: Lease length; renewed while the batch runs, so only a dead syncer lets it lapse.
    lease_seconds: float = 60.0
    #: Executions of one batch synced concurrently.
    concurrency: int = 8
    #: Most executions written by one transaction. A batch's fetched executions wait for
    #: one writer, which commits whatever is ready together (each execution whole or not
    #: at all), so PostgreSQL pays one commit and one search refresh per group.
    write_group: int = 8
    #: Also store the history as JSON (``temporal_history_json``) at sync time. Off by
    #: default: the conversion costs far more than the rest of the sync.
    store_history_json: bool = False
    #: Cap per decoded payload stored in component rows.
    payload_limit_bytes: int = 64 * 1024


class ExecutionMissing(Exception):
    """Temporal does not know this execution."""


class SyncActivities:
    """The activities of the sync task queue, bound to a Temporal client and the database."""

    def __init__(self, client: Client, db: Database, options: SyncOptions | None = None) -> None:
        self._client = client
        self._db = db
        self._options = options or SyncOptions()
        self._components: dict[str, UUID] | None = None

    @activity.defn(name="sync_executions")
    async def sync_executions(self, batch: SyncBatch) -> list[SyncResult]:
        """Sync every execution of the batch; one result each, in order.

        Per-execution problems become results (``retryable`` says whether another round
        may help); only infrastructure failures (database down) fail the activity, which
        Temporal then retries.
        """
        owner = _lease_owner()
        busy = await asyncio.to_thread(self._acquire, batch.executions, owner)
        gate = asyncio.Semaphore(self._options.concurrency)
        renewer = asyncio.create_task(self._renew_while_running(owner))
        writer = _GroupWriter(self._write_group, self._options.write_group)
        heartbeat = _Heartbeat()

        async def one(ref: ExecutionRef) -> SyncResult:
            if (ref.workflow_id, ref.run_id) in busy:
                return SyncResult(
                    execution=ref,
                    outcome=SyncOutcome.BUSY,
                    error="another sync of this execution is in progress",
                    retryable=True,
                )
            async with gate:
                return await self._sync_one(ref, owner, writer, heartbeat)

        try:
            return list(await asyncio.gather(*(one(ref) for ref in batch.executions)))
        finally:
            renewer.cancel()

    @activity.defn(name="record_sync_failures")
    async def record_sync_failures(self, failures: SyncFailures) -> None:
        """Keep each error on its execution row (for the user) and free its lease."""

        def write() -> None:
            with self._db.as_system() as conn:
                for failure in failures.failures:
                    ref = failure.execution
                    row = find_execution(conn, ref.namespace, ref.workflow_id, ref.run_id)
                    if row is not None:
                        mark_history_sync_failed(conn, row["id"], (failure.error or "")[:4000])

        await asyncio.to_thread(write)

    # -- one execution -----------------------------------------------------------------

    async def _sync_one(
        self, ref: ExecutionRef, owner: str, writer: _GroupWriter, heartbeat: _Heartbeat
    ) -> SyncResult:
        started = time.monotonic()
        try:
            fetched = await self._fetch(ref, heartbeat)
            report = fetched.reader.finish(fetched.pending)
            count = await writer.write(_WriteJob(ref, owner, report, fetched))
        except ExecutionMissing:
            return SyncResult(
                execution=ref,
                outcome=SyncOutcome.NOT_FOUND,
                error=f"execution {ref.workflow_id} / {ref.run_id} does not exist "
                f"in namespace {ref.namespace}",
            )
        except HistoryFormatError as exc:
            return SyncResult(ref, SyncOutcome.FAILED, error=f"history cannot be read: {exc}")
        except _Busy:
            return SyncResult(
                ref,
                SyncOutcome.BUSY,
                error="another sync of this execution is in progress",
                retryable=True,
            )
        except RPCError as exc:
            return SyncResult(
                ref, SyncOutcome.FAILED, error=f"Temporal: {exc.message}", retryable=True
            )
        except psycopg.DataError as exc:
            # A value PostgreSQL cannot store (a NUL character, "\u0000" in JSON): another
            # round would fail the same way, and failing the activity would fail every
            # execution of the batch after Temporal's retries. The primary message names
            # the problem; its detail would quote the data, so it is left out.
            return SyncResult(
                ref,
                SyncOutcome.FAILED,
                error=f"PostgreSQL refused the execution's data: {_refusal(exc)}",
            )
        return SyncResult(
            execution=ref,
            outcome=SyncOutcome.SYNCED,
            execution_status=report.execution.status.value,
            still_running=report.execution.status is ExecutionStatus.RUNNING,
            component_count=count,
            event_count=report.execution.event_count,
            history_bytes=len(fetched.proto),
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    async def _fetch(self, ref: ExecutionRef, heartbeat: _Heartbeat) -> _Fetched:
        """Stream the history page by page into the reader (a heartbeat after a page, at
        most one a second per batch)."""
        reader = HistoryReader(
            options=ReadOptions(
                namespace=ref.namespace, payload_limit_bytes=self._options.payload_limit_bytes
            )
        )
        execution = WorkflowExecution(workflow_id=ref.workflow_id, run_id=ref.run_id)
        chunks: list[bytes] = []
        events_json: list[dict[str, Any]] | None = [] if self._options.store_history_json else None
        last: HistoryEvent | None = None
        token = b""
        while True:
            try:
                page = await self._client.workflow_service.get_workflow_execution_history(
                    GetWorkflowExecutionHistoryRequest(
                        namespace=ref.namespace,
                        execution=execution,
                        next_page_token=token,
                        maximum_page_size=self._options.page_size,
                    )
                )
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise ExecutionMissing from None
                raise
            events = page.history.events
            reader.feed(events)
            # Serialised History messages concatenate into one History (repeated field).
            chunks.append(page.history.SerializeToString())
            if events_json is not None:
                events_json.extend(MessageToDict(e) for e in events)
            if events:
                last = events[-1]
            heartbeat.beat()
            token = page.next_page_token
            if not token:
                break

        pending: list[PendingActivityInfo] = []
        if last is None or last.event_type not in _CLOSING_EVENTS:
            described = await self._client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(namespace=ref.namespace, execution=execution)
            )
            pending = list(described.pending_activities)
        return _Fetched(reader, pending, b"".join(chunks), events_json)

    def _write(self, job: _WriteJob) -> int:
        """One transaction: execution row, component rows, stored history, status, lease."""
        with self._db.as_system() as conn:
            return self._write_in(conn, job)

    def _write_group(self, jobs: Sequence[_WriteJob]) -> list[int | BaseException]:
        """The jobs' writes in one transaction, each execution's rows whole: its component
        count, or the exception its write raised (:class:`_Busy`: nothing was written for
        it). Any other error rolls the group back, and each execution is then written in a
        transaction of its own, as a lone write would be: an error reaches only the
        execution that caused it (a deadlock with another writer: nobody). Only a lost
        connection fails them all at once, as it would fail each of their own writes."""
        if len(jobs) == 1:
            return [_outcome(self._write, jobs[0])]
        try:
            with self._db.as_system() as conn:
                return [_outcome(self._write_in, conn, job, catch=_Busy) for job in jobs]
        except psycopg.errors.TransactionRollback:  # deadlock, serialization failure
            pass
        except psycopg.OperationalError as exc:  # the database is unreachable
            return [exc] * len(jobs)
        except Exception:  # one execution's rows were refused: find which one
            pass
        return [_outcome(self._write, job) for job in jobs]

    def _write_in(self, conn: DbConnection, job: _WriteJob) -> int:
        """One execution's rows, in the caller's transaction (see :meth:`_write`)."""
        ref, owner, report, fetched = job.ref, job.owner, job.report, job.fetched
        summary = report.execution
        check = sync_rows.lock_for_sync_write(
            conn, ref.namespace, ref.workflow_id, ref.run_id, owner
        )
        if check is not None and check.busy:
            raise _Busy
        if check and check.stored_event_count and summary.event_count < check.stored_event_count:
            # A slower sync of an older snapshot: what is stored is newer; keep it.
            sync_rows.release_lease(conn, check.execution_id, owner)
            return sync_rows.component_count(conn, check.execution_id)
        components = self._component_ids(conn)
        children = sync_rows.execution_ids(
            conn,
            ref.namespace,
            [
                (c.child_workflow_id, c.child_run_id)
                for c in report.components
                if c.child_workflow_id and c.child_run_id
            ],
        )
        _, count = sync_rows.write_synced_execution(
            conn,
            ExecutionRow(
                temporal_namespace=ref.namespace,
                temporal_workflow_id=ref.workflow_id,
                temporal_run_id=ref.run_id,
                first_run_id=summary.first_execution_run_id,
                workflow_type=summary.workflow_type or "unknown",
                task_queue=summary.task_queue or "",
                status=summary.status,
                started_at=summary.started_at,  # type: ignore[arg-type]
                closed_at=summary.closed_at,
                duration_ms=summary.duration_ms,
                input=summary.input_data,
                output=summary.output_data,
                error_message=summary.error_message,
            ),
            [_component_row(c, components, children) for c in report.components],
            sync_rows.SyncedHistory(
                proto=fetched.proto,
                event_count=summary.event_count,
                json=({"events": fetched.events_json} if fetched.events_json is not None else None),
            ),
            wfmon_workflow_id=summary.wfmon_workflow_id,
            project_id=summary.project_id,
            user_id=summary.user_id,
            definition_version=summary.definition_version,
            finite_numbers=not report.non_finite_possible,
        )
        return count

    def _component_ids(self, conn: DbConnection) -> dict[str, UUID]:
        """Registered component ids by name, read once per worker (components are seeded by
        migrations and rarely change; a new one is picked up on the next worker start)."""
        if self._components is None:
            self._components = sync_rows.component_ids(conn)
        return self._components

    # -- leases --------------------------------------------------------------------------

    def _acquire(self, refs: list[ExecutionRef], owner: str) -> set[tuple[str, str]]:
        namespaces = {r.namespace for r in refs}
        if namespaces - {self._client.namespace}:
            raise ValueError(
                f"batch names namespace(s) {sorted(namespaces)}; this worker syncs "
                f"{self._client.namespace!r}"
            )
        with self._db.as_system() as conn:
            return sync_rows.acquire_leases(
                conn,
                self._client.namespace,
                [(r.workflow_id, r.run_id) for r in refs],
                owner,
                self._options.lease_seconds,
            )

    async def _renew_while_running(self, owner: str) -> None:
        def renew() -> None:
            with self._db.as_system() as conn:
                sync_rows.renew_leases(conn, owner, self._options.lease_seconds)

        while True:
            await asyncio.sleep(self._options.lease_seconds / 3)
            await asyncio.to_thread(renew)


# -- helpers ----------------------------------------------------------------------------


class _Busy(Exception):
    """Another owner's live lease on the row being written."""


#: Least time between two heartbeats of one batch's activity. Its heartbeat timeout is
#: 10 s, and the SDK sends at most one heartbeat per 8 s anyway; but each call costs its
#: Python bookkeeping (a task, a thread-safe wake-up), which per history page was ~2% of
#: the worker's CPU.
HEARTBEAT_EVERY_S = 1.0


class _Heartbeat:
    """Heartbeats of one activity, at most one per ``HEARTBEAT_EVERY_S``."""

    def __init__(self) -> None:
        self._last = -HEARTBEAT_EVERY_S

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last >= HEARTBEAT_EVERY_S:
            self._last = now
            activity.heartbeat()


@dataclass
class _Fetched:
    reader: HistoryReader
    pending: list[PendingActivityInfo]
    proto: bytes
    events_json: list[dict[str, Any]] | None


@dataclass(frozen=True)
class _WriteJob:
    """One fetched and read execution, ready to be written."""

    ref: ExecutionRef
    owner: str
    report: HistoryReport
    fetched: _Fetched


def _outcome(
    write: Callable[..., int], *args: Any, catch: type[BaseException] = BaseException
) -> int | BaseException:
    try:
        return write(*args)
    except catch as exc:
        return exc


class _GroupWriter:
    """Writes a batch's executions, as many at a time as are ready (up to ``limit``), one
    group after the other: while a group is written, the next one gathers."""

    def __init__(
        self, write_group: Callable[[Sequence[_WriteJob]], list[int | BaseException]], limit: int
    ) -> None:
        self._write_group = write_group
        self._limit = max(1, limit)
        self._waiting: list[tuple[_WriteJob, asyncio.Future[int]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def write(self, job: _WriteJob) -> int:
        """The execution's component count once its group committed (or its exception)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            group = self._waiting[: self._limit]
            del self._waiting[: self._limit]
            try:
                outcomes = await asyncio.to_thread(self._write_group, [job for job, _ in group])
            except BaseException as exc:  # the thread itself failed: every job fails
                outcomes = [exc] * len(group)
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


def _refusal(exc: psycopg.DataError) -> str:
    """What PostgreSQL (or psycopg, before sending) said was wrong, without the data."""
    return exc.diag.message_primary or str(exc).splitlines()[0]


def _lease_owner() -> str:
    """The batch (child workflow run) owns the leases: a retried attempt of the same batch
    takes over its own leases at once."""
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
        status=c.status,
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
