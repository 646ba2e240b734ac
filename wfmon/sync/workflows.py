"""The sync coordinator and the child sync workflow (both run on ``SYNC_TASK_QUEUE``).

The coordinator is a long-running workflow, one per namespace at a fixed id:

- ``request_sync`` / ``request_syncs`` (signals) queue executions;
- ``sync_now`` / ``sync_many_now`` (updates) sync at once and return the results — no
  polling;
- ``state`` (query) answers what is queued, in flight and live;
- deduplication is per execution: a request for an execution already queued or being
  synced joins that sync and gets its result;
- queued executions are synced in batches (``batch_size`` per child workflow, at most
  ``max_concurrent_batches`` children at a time): one child per execution would cost
  several workflow tasks per execution, which is what limits throughput;
- a synced execution that was still running is re-synced every ``live_resync_seconds``
  until it closes;
- it continues-as-new (carrying its queue and live set) after a number of batches or
  when Temporal suggests it, once no batch and no update is in flight.

Everything is Temporal state, so a worker or server restart loses no request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from wfmon.sync.messages import (
        COORDINATOR_WORKFLOW_TYPE,
        SYNC_BATCH_WORKFLOW_TYPE,
        SYNC_TASK_QUEUE,
        CoordinatorInput,
        CoordinatorState,
        ExecutionRef,
        LiveExecution,
        SyncBatch,
        SyncFailures,
        SyncOutcome,
        SyncResult,
    )

#: Rounds of retries of a batch's transiently failed executions, and the wait before each.
RETRY_ROUNDS = 4
RETRY_BACKOFF = (timedelta(seconds=1), timedelta(seconds=4), timedelta(seconds=15))

#: Retries of the batch activity itself (worker crash, lost heartbeat, database down).
ACTIVITY_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)


@workflow.defn(name=SYNC_BATCH_WORKFLOW_TYPE)
class SyncBatchWorkflow:
    """Sync a batch of executions; retry the transient failures a few rounds with backoff,
    then record the failures that remain on their execution rows."""

    @workflow.run
    async def run(self, batch: SyncBatch) -> list[SyncResult]:
        results: dict[str, SyncResult] = {}
        pending = batch.executions
        for round_ in range(RETRY_ROUNDS):
            outcome: list[SyncResult] = await workflow.execute_activity(
                "sync_executions",
                SyncBatch(pending),
                result_type=list[SyncResult],
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=ACTIVITY_RETRY_POLICY,
            )
            results.update((r.execution.key, r) for r in outcome)
            pending = [r.execution for r in outcome if r.retryable]
            if not pending or round_ == RETRY_ROUNDS - 1:
                break
            await workflow.sleep(RETRY_BACKOFF[min(round_, len(RETRY_BACKOFF) - 1)])

        failed = [r for r in results.values() if r.outcome is SyncOutcome.FAILED]
        if failed:
            await workflow.execute_activity(
                "record_sync_failures",
                SyncFailures(failed),
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=ACTIVITY_RETRY_POLICY,
            )
        return [results[e.key] for e in batch.executions]


@workflow.defn(name=COORDINATOR_WORKFLOW_TYPE)
class SyncCoordinatorWorkflow:
    @workflow.init
    def __init__(self, start: CoordinatorInput) -> None:
        self._config = start.config
        self._queue: dict[str, ExecutionRef] = {}
        #: One future per queued or in-flight execution; every request for it awaits this.
        self._futures: dict[str, asyncio.Future[SyncResult]] = {}
        self._in_flight: set[str] = set()
        #: Executions an update is waiting for (synced first, even while draining).
        self._awaited: set[str] = set()
        self._live: dict[str, LiveExecution] = {le.execution.key: le for le in start.live}
        self._running_batches = 0
        self._batches_this_run = 0
        self._completed = start.completed_syncs
        self._failed = start.failed_syncs
        self._tasks: set[asyncio.Task[None]] = set()
        for ref in start.queued:
            self._enqueue(ref)

    # -- messages --------------------------------------------------------------------

    @workflow.signal
    def request_sync(self, execution: ExecutionRef) -> None:
        """Queue a sync (joins one already queued or in flight)."""
        self._enqueue(execution)

    @workflow.signal
    def request_syncs(self, executions: list[ExecutionRef]) -> None:
        for execution in executions:
            self._enqueue(execution)

    @workflow.update
    async def sync_now(self, execution: ExecutionRef) -> SyncResult:
        """Sync ``execution`` now (or join its sync) and return the result."""
        return (await self._sync([execution]))[0]

    @workflow.update
    async def sync_many_now(self, executions: list[ExecutionRef]) -> list[SyncResult]:
        """Sync every execution (joining syncs already queued or in flight); the results in
        the same order."""
        return await self._sync(executions)

    async def _sync(self, executions: list[ExecutionRef]) -> list[SyncResult]:
        futures = [self._enqueue(e) for e in executions]
        self._awaited.update(e.key for e in executions)
        return list(await asyncio.gather(*futures))

    @workflow.query
    def state(self) -> CoordinatorState:
        return CoordinatorState(
            queued=list(self._queue),
            in_flight=sorted(self._in_flight),
            live=list(self._live),
            running_batches=self._running_batches,
            completed_syncs=self._completed,
            failed_syncs=self._failed,
        )

    # -- main loop -------------------------------------------------------------------

    @workflow.run
    async def run(self, start: CoordinatorInput) -> None:
        while True:
            self._queue_due_live_executions()
            draining = self._should_continue_as_new()
            while self._running_batches < self._config.max_concurrent_batches:
                batch = self._next_batch(only_awaited=draining)
                if not batch:
                    break
                self._start_batch(batch)

            if draining and self._running_batches == 0 and workflow.all_handlers_finished():
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
                    self._wake_when(draining), timeout=self._seconds_to_next_live_sync()
                )

    # -- internals -------------------------------------------------------------------

    def _wake_when(self, draining: bool) -> Callable[[], bool]:
        """Condition for the main loop to go round again: a batch can start, a batch
        finished, or (draining) it is time to continue-as-new.

        Every clause must be false when the loop goes to sleep, or the loop spins without
        yielding (the SDK then fails the workflow task as a deadlock): hence "no batch
        running" in the last one, which the loop acts on before it waits."""
        finished = self._batches_this_run
        return lambda: (
            self._startable(draining)
            or self._batches_this_run != finished
            or (draining and self._running_batches == 0 and workflow.all_handlers_finished())
        )

    def _enqueue(self, execution: ExecutionRef) -> asyncio.Future[SyncResult]:
        key = execution.key
        future = self._futures.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._futures[key] = future
            self._queue[key] = execution
            self._live.pop(key, None)
        return future

    def _next_batch(self, *, only_awaited: bool) -> list[ExecutionRef]:
        keys = [k for k in self._queue if not only_awaited or k in self._awaited]
        return [self._queue.pop(k) for k in keys[: self._config.batch_size]]

    def _startable(self, draining: bool) -> bool:
        if self._running_batches >= self._config.max_concurrent_batches:
            return False
        return any(not draining or k in self._awaited for k in self._queue)

    def _start_batch(self, batch: list[ExecutionRef]) -> None:
        self._running_batches += 1
        self._in_flight.update(e.key for e in batch)
        task = asyncio.create_task(self._run_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: list[ExecutionRef]) -> None:
        try:
            results: list[SyncResult] = await workflow.execute_child_workflow(
                SyncBatchWorkflow.run,
                SyncBatch(batch),
                id=f"wfmon-sync-batch-{workflow.uuid4()}",
                task_queue=SYNC_TASK_QUEUE,
            )
        except ChildWorkflowError as exc:
            results = [
                SyncResult(execution=e, outcome=SyncOutcome.FAILED, error=str(exc.cause or exc))
                for e in batch
            ]
        now = workflow.time()
        for result in results:
            key = result.execution.key
            if result.outcome is SyncOutcome.SYNCED:
                self._completed += 1
                if result.still_running:
                    self._live[key] = LiveExecution(
                        execution=result.execution,
                        next_sync_at=now + self._config.live_resync_seconds,
                    )
            else:
                self._failed += 1
            self._in_flight.discard(key)
            self._awaited.discard(key)
            future = self._futures.pop(key, None)
            if future is not None and not future.done():
                future.set_result(result)
        self._running_batches -= 1
        self._batches_this_run += 1

    def _queue_due_live_executions(self) -> None:
        now = workflow.time()
        for key, live in list(self._live.items()):
            if live.next_sync_at <= now and key not in self._futures:
                del self._live[key]
                self._enqueue(live.execution)

    def _seconds_to_next_live_sync(self) -> float | None:
        if not self._live:
            return None
        due = min(le.next_sync_at for le in self._live.values())
        return max(0.001, due - workflow.time())

    def _should_continue_as_new(self) -> bool:
        return (
            self._batches_this_run >= self._config.batches_before_continue_as_new
            or workflow.info().is_continue_as_new_suggested()
        )
