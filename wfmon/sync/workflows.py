"""The sync coordinator and the child sync workflow (both run on ``SYNC_TASK_QUEUE``).

The coordinator is a long-running workflow, one per namespace at a fixed id:

- ``request_sync`` (signal) queues an execution; a request for an execution already queued
  or being synced joins it (one child workflow id per execution);
- ``sync_now`` (update) syncs at once and returns the :class:`SyncResult` — no polling;
- ``state`` (query) answers what is queued, in flight and live;
- at most ``max_concurrent_syncs`` queued syncs run at a time;
- a synced execution that was still running is re-synced every ``live_resync_seconds``
  until it closes;
- it continues-as-new (carrying its queue and live set) after a number of syncs or when
  Temporal suggests it, once no sync or update is in flight.

Everything is Temporal state, so a worker or server restart loses no request.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from wfmon.sync.messages import (
        COORDINATOR_WORKFLOW_TYPE,
        SYNC_EXECUTION_WORKFLOW_TYPE,
        SYNC_TASK_QUEUE,
        CoordinatorInput,
        CoordinatorState,
        ExecutionRef,
        LiveExecution,
        SyncFailure,
        SyncOutcome,
        SyncResult,
    )

#: Retry policy of the sync activity: backoff, and give up after a few attempts so the
#: error reaches the user (the coordinator or the next request tries again later).
SYNC_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=["ExecutionNotFound", "HistoryFormatError"],
)


@workflow.defn(name=SYNC_EXECUTION_WORKFLOW_TYPE)
class SyncExecutionWorkflow:
    """Sync one execution: a single activity streams, parses and writes its history."""

    @workflow.run
    async def run(self, execution: ExecutionRef) -> SyncResult:
        try:
            result: SyncResult = await workflow.execute_activity(
                "sync_execution",
                execution,
                result_type=SyncResult,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=SYNC_RETRY_POLICY,
            )
            return result
        except ActivityError as exc:
            message = str(exc.cause or exc)
            await workflow.execute_activity(
                "record_sync_failure",
                SyncFailure(execution=execution, error=message),
                start_to_close_timeout=timedelta(seconds=30),
            )
            outcome = (
                SyncOutcome.NOT_FOUND
                if getattr(exc.cause, "type", None) == "ExecutionNotFound"
                else SyncOutcome.FAILED
            )
            return SyncResult(execution=execution, outcome=outcome, error=message)


@workflow.defn(name=COORDINATOR_WORKFLOW_TYPE)
class SyncCoordinatorWorkflow:
    @workflow.init
    def __init__(self, start: CoordinatorInput) -> None:
        self._config = start.config
        self._queue: dict[str, ExecutionRef] = {r.key: r for r in start.queued}
        self._live: dict[str, LiveExecution] = {le.execution.key: le for le in start.live}
        self._in_flight: dict[str, asyncio.Future[SyncResult]] = {}
        self._completed = start.completed_syncs
        self._failed = start.failed_syncs
        self._syncs_this_run = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # -- messages --------------------------------------------------------------------

    @workflow.signal
    def request_sync(self, execution: ExecutionRef) -> None:
        """Queue a sync (joins one already queued or in flight)."""
        if execution.key not in self._in_flight:
            self._queue.setdefault(execution.key, execution)

    @workflow.update
    async def sync_now(self, execution: ExecutionRef) -> SyncResult:
        """Sync ``execution`` now (or join the sync in flight) and return its result."""
        self._queue.pop(execution.key, None)
        future = self._in_flight.get(execution.key) or self._start(execution)
        return await future

    @workflow.query
    def state(self) -> CoordinatorState:
        return CoordinatorState(
            queued=list(self._queue),
            in_flight=list(self._in_flight),
            live=list(self._live),
            completed_syncs=self._completed,
            failed_syncs=self._failed,
        )

    # -- main loop -------------------------------------------------------------------

    @workflow.run
    async def run(self, start: CoordinatorInput) -> None:
        while True:
            self._queue_due_live_executions()
            while self._queue and len(self._in_flight) < self._config.max_concurrent_syncs:
                key = next(iter(self._queue))
                self._start(self._queue.pop(key))

            if self._should_continue_as_new():
                await workflow.wait_condition(
                    lambda: not self._in_flight and workflow.all_handlers_finished()
                )
                workflow.continue_as_new(
                    CoordinatorInput(
                        config=self._config,
                        queued=list(self._queue.values()),
                        live=list(self._live.values()),
                        completed_syncs=self._completed,
                        failed_syncs=self._failed,
                    )
                )

            with contextlib.suppress(TimeoutError):  # timing out = a live execution is due
                await workflow.wait_condition(
                    lambda: self._has_startable_work() or self._should_continue_as_new(),
                    timeout=self._seconds_to_next_live_sync(),
                )

    # -- internals -------------------------------------------------------------------

    def _start(self, execution: ExecutionRef) -> asyncio.Future[SyncResult]:
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        self._in_flight[execution.key] = future
        self._live.pop(execution.key, None)
        task = asyncio.create_task(self._run_child(execution, future))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return future

    async def _run_child(self, execution: ExecutionRef, future: asyncio.Future[SyncResult]) -> None:
        try:
            result: SyncResult = await workflow.execute_child_workflow(
                SyncExecutionWorkflow.run,
                execution,
                id=execution.child_workflow_id(),
                task_queue=SYNC_TASK_QUEUE,
            )
        except ChildWorkflowError as exc:
            result = SyncResult(execution=execution, outcome=SyncOutcome.FAILED, error=str(exc))
        self._syncs_this_run += 1
        if result.outcome is SyncOutcome.SYNCED:
            self._completed += 1
        else:
            self._failed += 1
        if result.outcome is SyncOutcome.SYNCED and result.still_running:
            self._live[execution.key] = LiveExecution(
                execution=execution,
                next_sync_at=workflow.time() + self._config.live_resync_seconds,
            )
        del self._in_flight[execution.key]
        future.set_result(result)

    def _queue_due_live_executions(self) -> None:
        now = workflow.time()
        for key, live in list(self._live.items()):
            if live.next_sync_at <= now and key not in self._in_flight:
                del self._live[key]
                self._queue.setdefault(key, live.execution)

    def _has_startable_work(self) -> bool:
        return bool(self._queue) and len(self._in_flight) < self._config.max_concurrent_syncs

    def _seconds_to_next_live_sync(self) -> float | None:
        if not self._live:
            return None
        due = min(le.next_sync_at for le in self._live.values())
        return max(0.001, due - workflow.time())

    def _should_continue_as_new(self) -> bool:
        return (
            self._syncs_this_run >= self._config.syncs_before_continue_as_new
            or workflow.info().is_continue_as_new_suggested()
        )
