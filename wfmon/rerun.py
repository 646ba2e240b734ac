"""Running an execution again: "run again with the same input" and "retry from the
failed node" (Temporal's own workflow reset). The one service the JSON API and the pages
call.

Guarantees:

- Only the execution's owner may do either (an execution the caller cannot see is
  :class:`RerunNotFound`, one they can see but did not start is :class:`RerunForbidden`),
  and only for wfmon's builder workflow: other workflow types are refused with a sentence
  saying why (:func:`refusal`, which the page also uses to decide what it offers).
- All or nothing: the checks, the Temporal call and the link row run in ONE unit of work
  under the caller's row-level security. When Temporal refuses, nothing is written; when
  the check or the Temporal call fails, the link is rolled back with it. (Only a commit
  failing after Temporal accepted leaves a run without its link; Temporal still knows
  it, as the old run's ``reset_run_id``, and the next retry request records the link
  from there instead of resetting again: so does a reset made in Temporal's UI or CLI.)
- Retry from the failed node resets the failed run to the WorkflowTaskCompleted event
  whose commands scheduled the earliest failed node: the nodes that completed before it
  keep their results (their events are copied into the new run and they do not run
  again); the failed node and everything after it run again. A run is retried once
  (a second reset would terminate the first retry if it were running); retry the new run
  instead. Re-runs of one execution are serialised by an advisory lock.
- Run again starts a new execution (a new workflow id) with the exact input the source
  started with (read from Temporal, never from the size-capped copy in PostgreSQL), on
  the same definition version or the workflow's latest one.
- Afterwards the new run is synced at once (bounded by ``sync_timeout``); if that does
  not finish in time the coordinator syncs it later and the link still resolves, since
  it names the new run by its Temporal ids.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from pydantic import ValidationError
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from wfmon.db import Database, DbConnection
from wfmon.db import reruns as db
from wfmon.db.reruns import RerunKind
from wfmon.model import BUILDER_WORKFLOW_TYPE, ExecutionStatus, WorkflowDefinition, is_failure
from wfmon.runtime.client import RunContext, start_builder_run
from wfmon.runtime.messages import BuilderRunInput
from wfmon.sync.messages import ExecutionRef
from wfmon.sync.worker import sync_now

T = TypeVar("T")


class VersionChoice(StrEnum):
    """Which definition "run again" runs."""

    #: The version the execution ran (exactly its definition, from its start input).
    SAME = "same"
    #: The workflow's current definition.
    LATEST = "latest"


class Refusal(StrEnum):
    """Why a re-run is not done (the API's error code)."""

    NOT_BUILDER = "not_builder_workflow"
    STILL_RUNNING = "still_running"
    NOT_FAILED = "not_failed"
    NO_FAILED_NODE = "no_failed_node"
    ALREADY_RETRIED = "already_retried"
    NEWER_RUN_RUNNING = "newer_run_running"
    NO_LATEST_DEFINITION = "no_latest_definition"
    WORKFLOW_DELETED = "workflow_deleted"
    INVALID_DEFINITION = "invalid_definition"
    UNREADABLE_INPUT = "unreadable_input"
    GONE_FROM_TEMPORAL = "gone_from_temporal"
    OTHER_NAMESPACE = "other_namespace"


class RerunError(Exception):
    """Base of the errors below; ``str()`` is a sentence for the user."""


class RerunNotFound(RerunError):
    """No such execution, or not visible to the caller (never says which)."""


class RerunForbidden(RerunError):
    """The caller may see the execution but did not start it."""


class RerunRefused(RerunError):
    """The execution is not in a state (or of a type) that allows this re-run."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class RerunUnavailable(RerunError):
    """Temporal did not answer (or refused for a reason of its own)."""


@dataclass(frozen=True)
class RerunResult:
    """The new run. ``execution_id`` is its wfmon id once synced (None if the immediate
    sync did not finish in time: the coordinator syncs it later)."""

    kind: RerunKind
    source_execution_id: UUID
    temporal_namespace: str
    temporal_workflow_id: str
    temporal_run_id: str
    definition_version: int | None
    failed_node_id: str | None
    execution_id: UUID | None
    sync_error: str | None = None


# -- what is offered (shared with the page) -------------------------------------------------

NOT_BUILDER_SENTENCE = (
    "Run again and retry from the failed node are offered for workflows made in wfmon's "
    "workflow builder only: this is a {workflow_type} workflow, started by its own "
    "application, and wfmon does not know which worker, task queue and arguments it needs, "
    "nor whether its code can be replayed safely from the point where it failed."
)


def refusal(
    kind: RerunKind,
    *,
    workflow_type: str,
    status: str,
    has_workflow: bool = True,
    has_failed_node: bool | None = None,
) -> RerunRefused | None:
    """Why ``kind`` is not possible for an execution like this one, or None when it is.
    ``has_workflow``: it still belongs to a wfmon workflow; ``has_failed_node`` None
    means "not known yet" (not checked)."""
    if workflow_type != BUILDER_WORKFLOW_TYPE:
        return RerunRefused(
            Refusal.NOT_BUILDER, NOT_BUILDER_SENTENCE.format(workflow_type=workflow_type)
        )
    if not has_workflow:
        # The new run's memo would name no workflow of the user's: nobody would own it.
        return RerunRefused(
            Refusal.WORKFLOW_DELETED,
            "this execution's workflow has been deleted from wfmon, so a new run of it "
            "would belong to nobody: recreate the workflow and start it from there",
        )
    if status == ExecutionStatus.RUNNING:
        return RerunRefused(
            Refusal.STILL_RUNNING,
            "this execution is still running: run it again or retry it once it has ended",
        )
    if kind is RerunKind.RUN_AGAIN:
        return None
    if not is_failure(status):
        return RerunRefused(
            Refusal.NOT_FAILED,
            f"this execution {status.replace('_', ' ')} without failing: there is no failed "
            "node to retry from (run it again instead)",
        )
    if has_failed_node is False:
        return RerunRefused(
            Refusal.NO_FAILED_NODE,
            f"no node failed in this execution (the execution itself "
            f"{status.replace('_', ' ')}): there is no failed node to retry from "
            "(run it again instead)",
        )
    return None


# -- reading the source run from Temporal ------------------------------------------------------


@dataclass(frozen=True)
class ResetPoint:
    """Where a failed builder run is reset to."""

    #: The earliest scheduled node that failed (or timed out).
    node_id: str
    scheduled_event_id: int
    #: The WorkflowTaskCompleted event whose commands scheduled that node.
    workflow_task_completed_event_id: int
    #: Every node that failed, in schedule order.
    failed_nodes: tuple[str, ...]


_FAILED_ACTIVITY_EVENTS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
}


def reset_point(events: Sequence[HistoryEvent]) -> ResetPoint | None:
    """The reset point of a history: before the earliest failed activity was scheduled.
    None when no activity failed. Pure: reads only ``events``."""
    scheduled: dict[int, tuple[str, int]] = {}
    failed: set[int] = set()
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = (attrs.activity_id, attrs.workflow_task_completed_event_id)
        elif (field := _FAILED_ACTIVITY_EVENTS.get(event.event_type)) is not None:
            failed.add(getattr(event, field).scheduled_event_id)
    failed &= set(scheduled)
    if not failed:
        return None
    first = min(failed)
    node_id, completed_id = scheduled[first]
    return ResetPoint(
        node_id=node_id,
        scheduled_event_id=first,
        workflow_task_completed_event_id=completed_id,
        failed_nodes=tuple(dict.fromkeys(scheduled[s][0] for s in sorted(failed))),
    )


async def _history(client: Client, ref: ExecutionRef) -> list[HistoryEvent]:
    handle = client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id)
    return [e async for e in handle.fetch_history_events()]


async def _start_input(client: Client, ref: ExecutionRef) -> BuilderRunInput:
    handle = client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id)
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        try:
            decoded = await client.data_converter.decode(payloads, [BuilderRunInput])
        except Exception as exc:  # any converter failure: the input cannot be replayed
            raise RerunRefused(
                Refusal.UNREADABLE_INPUT,
                f"the execution's input cannot be read back from Temporal ({type(exc).__name__})",
            ) from None
        if len(decoded) != 1 or not isinstance(decoded[0], BuilderRunInput):
            break
        return decoded[0]
    raise RerunRefused(
        Refusal.UNREADABLE_INPUT, "the execution's history has no builder start input"
    )


# -- the service ----------------------------------------------------------------------------


class RerunService:
    """Re-runs for one database and one Temporal client (namespace)."""

    def __init__(
        self,
        db: Database,
        client: Client,
        *,
        sync_timeout: float = 15.0,
        temporal_timeout: float = 30.0,
    ) -> None:
        self._db = db
        self._client = client
        self._sync_timeout = sync_timeout
        self._temporal_timeout = temporal_timeout

    async def run_again(
        self, auth_user_id: UUID, execution_id: UUID, version: VersionChoice
    ) -> RerunResult:
        """Start a new execution with the source's input, on ``version``'s definition."""

        def work(conn: DbConnection, call: _Call) -> db.NewRun:
            src = self._owned_source(conn, execution_id, RerunKind.RUN_AGAIN)
            ref = self._ref(src)
            started = call(_start_input(self._client, ref))
            definition = self._definition(conn, src, started, version)
            handle = call(
                start_builder_run(
                    self._client,
                    definition,
                    started.input,
                    context=RunContext(
                        workflow_id=str(src.workflow_id),
                        project_id=str(src.project_id),
                        user_id=str(src.created_by),
                    ),
                    task_queue=src.task_queue,
                )
            )
            assert handle.result_run_id is not None  # set by start_workflow
            run = db.NewRun(
                source_execution_id=src.id,
                kind=RerunKind.RUN_AGAIN,
                temporal_namespace=ref.namespace,
                temporal_workflow_id=handle.id,
                temporal_run_id=handle.result_run_id,
                definition_version=definition.version,
                created_by=src.created_by,
            )
            db.insert_rerun(conn, run)
            return run

        return await self._finish(auth_user_id, await self._in_transaction(auth_user_id, work))

    async def retry_from_failed(self, auth_user_id: UUID, execution_id: UUID) -> RerunResult:
        """Reset the failed run to just before its earliest failed node was scheduled."""

        def work(conn: DbConnection, call: _Call) -> tuple[db.NewRun, bool]:
            src = self._owned_source(conn, execution_id, RerunKind.RETRY_FROM_FAILED)
            ref = self._ref(src)
            db.lock_source(conn, src.id)
            previous = db.retry_of(conn, src.id)
            if previous is not None:
                raise RerunRefused(
                    Refusal.ALREADY_RETRIED,
                    "this execution was already retried from its failed node (run "
                    f"{previous.temporal_run_id}); retry that run instead if it failed too",
                )
            reset_before = call(self._check_closed_and_current(ref))
            point = reset_point(call(_history(self._client, ref)))
            no_node = refusal(
                RerunKind.RETRY_FROM_FAILED,
                workflow_type=src.workflow_type,
                status=src.status,
                has_failed_node=point is not None,
            )
            if no_node is not None:
                raise no_node
            assert point is not None
            if reset_before:
                # Reset in Temporal without a link here (from Temporal's UI or CLI, or the
                # link's commit failed): record the link, and do not reset it again.
                run = self._retry_run(src, ref, reset_before, point)
                db.insert_rerun(conn, run)
                return run, True
            response = call(
                self._client.workflow_service.reset_workflow_execution(
                    ResetWorkflowExecutionRequest(
                        namespace=ref.namespace,
                        workflow_execution=WorkflowExecution(
                            workflow_id=ref.workflow_id, run_id=ref.run_id
                        ),
                        reason=(
                            f"wfmon: retry from the failed node {point.node_id!r} "
                            f"(execution {src.id})"
                        ),
                        workflow_task_finish_event_id=point.workflow_task_completed_event_id,
                        request_id=str(uuid.uuid4()),
                        identity="wfmon",
                    )
                )
            )
            run = self._retry_run(src, ref, response.run_id, point)
            db.insert_rerun(conn, run)
            return run, False

        run, recovered = await self._in_transaction(auth_user_id, work)
        if recovered:
            raise RerunRefused(
                Refusal.ALREADY_RETRIED,
                f"this execution was already reset in Temporal (run {run.temporal_run_id}); "
                "wfmon has now linked that run: retry it instead if it failed too",
            )
        return await self._finish(auth_user_id, run)

    # -- steps ------------------------------------------------------------------------

    def _owned_source(
        self, conn: DbConnection, execution_id: UUID, kind: RerunKind
    ) -> db.SourceExecution:
        src = db.source_execution(conn, execution_id)
        if src is None:
            raise RerunNotFound(f"execution {execution_id} not found")
        if not src.is_mine:
            raise RerunForbidden(
                "only the user who started this execution may run it again or retry it"
            )
        refused = refusal(
            kind,
            workflow_type=src.workflow_type,
            status=src.status,
            has_workflow=src.workflow_id is not None,
        )
        if refused is not None:
            raise refused
        return src

    def _ref(self, src: db.SourceExecution) -> ExecutionRef:
        if src.temporal_namespace != self._client.namespace:
            raise RerunRefused(
                Refusal.OTHER_NAMESPACE,
                f"this execution ran in Temporal namespace {src.temporal_namespace!r}; this "
                f"server is connected to {self._client.namespace!r}",
            )
        return ExecutionRef(src.temporal_namespace, src.temporal_workflow_id, src.temporal_run_id)

    @staticmethod
    def _retry_run(
        src: db.SourceExecution, ref: ExecutionRef, run_id: str, point: ResetPoint
    ) -> db.NewRun:
        return db.NewRun(
            source_execution_id=src.id,
            kind=RerunKind.RETRY_FROM_FAILED,
            temporal_namespace=ref.namespace,
            temporal_workflow_id=ref.workflow_id,
            temporal_run_id=run_id,
            definition_version=src.workflow_version,
            created_by=src.created_by,
            failed_node_id=point.node_id,
            reset_event_id=point.workflow_task_completed_event_id,
        )

    async def _check_closed_and_current(self, ref: ExecutionRef) -> str:
        """Temporal's own view: the run has ended (the stored copy may lag), and no newer
        run of the same workflow id is running (a reset would terminate it). Returns the
        run this one was already reset to in Temporal ("" when none)."""
        this = await self._client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id).describe()
        if this.status == WorkflowExecutionStatus.RUNNING:
            raise RerunRefused(
                Refusal.STILL_RUNNING,
                "Temporal says this execution is still running (wfmon has not synced its "
                "end yet): retry it once it has ended",
            )
        reset_to = this.raw_description.workflow_extended_info.reset_run_id
        if reset_to:
            return reset_to
        current = await self._client.get_workflow_handle(ref.workflow_id).describe()
        if current.run_id != ref.run_id and current.status == WorkflowExecutionStatus.RUNNING:
            raise RerunRefused(
                Refusal.NEWER_RUN_RUNNING,
                f"a newer run of this workflow ({current.run_id}) is running: a reset "
                "would terminate it; wait for it to end",
            )
        return ""

    def _definition(
        self,
        conn: DbConnection,
        src: db.SourceExecution,
        started: BuilderRunInput,
        version: VersionChoice,
    ) -> WorkflowDefinition:
        try:
            ran = WorkflowDefinition.model_validate(started.definition)
        except ValidationError as exc:
            raise RerunRefused(
                Refusal.INVALID_DEFINITION,
                f"the definition this execution ran is not valid today: {_first_error(exc)}",
            ) from None
        if version is VersionChoice.SAME:
            return ran
        assert src.workflow_id is not None  # _owned_source refuses executions without one
        latest = db.latest_definition(conn, src.workflow_id)
        if latest is None:
            raise RerunRefused(
                Refusal.NO_LATEST_DEFINITION,
                "this execution's workflow is no longer yours to read: run it again with the "
                "same version instead",
            )
        stored = latest.definition if isinstance(latest.definition, dict) else {}
        # The stored definition may leave out the builder's id and name: keep the run's.
        data = {"id": ran.id, "name": ran.name, **stored, "version": latest.version}
        try:
            return WorkflowDefinition.model_validate(data)
        except ValidationError as exc:
            raise RerunRefused(
                Refusal.INVALID_DEFINITION,
                f"the latest version ({latest.version}) of workflow {latest.name!r} is not a "
                f"valid definition: {_first_error(exc)}",
            ) from None

    # -- plumbing -----------------------------------------------------------------------

    async def _in_transaction(
        self, auth_user_id: UUID, work: Callable[[DbConnection, _Call], T]
    ) -> T:
        """``work`` in one unit of work as the caller, on a worker thread; ``call`` runs a
        Temporal coroutine on this event loop (where the client lives) and waits for it."""
        loop = asyncio.get_running_loop()
        timeout = self._temporal_timeout

        def call(coro: Coroutine[Any, Any, Any]) -> Any:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
            try:
                return future.result(timeout)
            except FutureTimeout:
                future.cancel()
                raise RerunUnavailable(f"Temporal did not answer within {timeout:.0f} s") from None
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise RerunRefused(
                        Refusal.GONE_FROM_TEMPORAL,
                        "Temporal no longer has this execution (its retention period has "
                        "passed): it cannot be run again from here",
                    ) from None
                raise RerunUnavailable(f"Temporal refused: {exc.message}") from None

        def run() -> T:
            with self._db.as_user(auth_user_id) as conn:
                return work(conn, call)

        return await asyncio.to_thread(run)

    async def _finish(self, auth_user_id: UUID, run: db.NewRun) -> RerunResult:
        """Sync the new run now (bounded), then find its row under the caller's RLS."""
        ref = ExecutionRef(run.temporal_namespace, run.temporal_workflow_id, run.temporal_run_id)
        sync_error: str | None = None
        try:
            result = await asyncio.wait_for(sync_now(self._client, ref), self._sync_timeout)
            sync_error = result.error
        except TimeoutError:
            sync_error = f"not synced within {self._sync_timeout:.0f} s; it will be shortly"
        except RPCError as exc:
            sync_error = f"sync not requested: {exc.message}"

        def find() -> UUID | None:
            with self._db.as_user(auth_user_id) as conn:
                return db.find_execution_id(conn, *_ref_tuple(ref))

        return RerunResult(
            kind=RerunKind(run.kind),
            source_execution_id=run.source_execution_id,
            temporal_namespace=run.temporal_namespace,
            temporal_workflow_id=run.temporal_workflow_id,
            temporal_run_id=run.temporal_run_id,
            definition_version=run.definition_version,
            failed_node_id=run.failed_node_id,
            execution_id=await asyncio.to_thread(find),
            sync_error=sync_error,
        )


_Call = Callable[[Coroutine[Any, Any, Any]], Any]


def _ref_tuple(ref: ExecutionRef) -> tuple[str, str, str]:
    return ref.namespace, ref.workflow_id, ref.run_id


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "definition"
    return f"{where}: {err.get('msg', 'invalid')}"


__all__ = [
    "Refusal",
    "RerunError",
    "RerunForbidden",
    "RerunKind",
    "RerunNotFound",
    "RerunRefused",
    "RerunResult",
    "RerunService",
    "RerunUnavailable",
    "ResetPoint",
    "VersionChoice",
    "refusal",
    "reset_point",
]
