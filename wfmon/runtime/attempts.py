"""Per-attempt retry history, recorded on the worker because Temporal does not keep it.

Temporal's history keeps only an activity's last attempt. :class:`AttemptRecordingInterceptor`
sees every attempt as it runs and hands an :class:`AttemptRecord` to an
:class:`AttemptRecorder`, which buffers records in memory and writes them in batches to an
:class:`AttemptSink` from a background task.

Guarantee: recording never fails an activity and never makes it wait. ``record()`` only
appends to a bounded buffer; when the sink is down, batches stay buffered and are
retried with backoff; when the buffer is full the oldest records are dropped and counted
in :attr:`RecorderStats.dropped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

logger = logging.getLogger(__name__)

#: Longest failure stack trace kept per attempt (characters).
MAX_STACK_CHARS = 16_000


class AttemptOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    #: Temporal timed the attempt out (start-to-close or heartbeat) and canceled it.
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of one activity, as the worker saw it. Times are UTC."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    #: The node id for builder workflows.
    activity_id: str
    activity_type: str
    attempt: int
    is_local: bool
    task_queue: str
    scheduled_at: datetime | None
    started_at: datetime
    ended_at: datetime
    outcome: AttemptOutcome
    failure_type: str | None = None
    failure_message: str | None = None
    failure_stack: str | None = None
    non_retryable: bool | None = None
    worker_identity: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() * 1000


class AttemptSink(Protocol):
    """Where attempt records end up (PostgreSQL in production).

    ``write`` stores the whole batch or raises; a raise means nothing of the batch needs
    to be considered stored (the recorder will offer it again, so writes should be
    idempotent on (workflow_id, run_id, activity_id, attempt)).
    """

    async def write(self, records: Sequence[AttemptRecord]) -> None: ...


@dataclass
class InMemoryAttemptSink:
    """Keeps every record in a list. For tests, demos and single-process inspection."""

    records: list[AttemptRecord] = field(default_factory=list)

    async def write(self, records: Sequence[AttemptRecord]) -> None:
        self.records.extend(records)


@dataclass(frozen=True)
class RecorderStats:
    recorded: int
    written: int
    dropped: int
    write_failures: int
    buffered: int


class AttemptRecorder:
    """Bounded buffer + background flusher between the interceptor and a sink.

    Use as ``async with recorder:`` around the worker (starts the flusher, and on exit
    flushes what it can within ``close_timeout`` seconds). ``record()`` is safe from any
    thread (sync activities run in a thread pool).
    """

    def __init__(
        self,
        sink: AttemptSink,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_backoff: float = 30.0,
        close_timeout: float = 5.0,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be at least 1")
        self.sink = sink
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_backoff = max_backoff
        self.close_timeout = close_timeout
        self._buffer: deque[AttemptRecord] = deque()
        self._lock = threading.Lock()
        self._recorded = self._written = self._dropped = self._failures = 0
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # -- producer side (the interceptor) ---------------------------------------------

    def record(self, rec: AttemptRecord) -> None:
        """Buffer one record; drops the oldest when full. Never raises, never blocks long."""
        try:
            with self._lock:
                if len(self._buffer) >= self.capacity:
                    self._buffer.popleft()
                    self._dropped += 1
                self._buffer.append(rec)
                self._recorded += 1
                full_batch = len(self._buffer) >= self.batch_size
            if full_batch and self._loop is not None and self._wake is not None:
                self._loop.call_soon_threadsafe(self._wake.set)
        except Exception:  # recording must never fail the activity
            logger.exception("could not buffer an attempt record")

    def stats(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(
                recorded=self._recorded,
                written=self._written,
                dropped=self._dropped,
                write_failures=self._failures,
                buffered=len(self._buffer),
            )

    # -- consumer side (background task) ---------------------------------------------

    async def __aenter__(self) -> AttemptRecorder:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start the background flusher on the running event loop (idempotent)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="wfmon-attempt-recorder")

    async def close(self) -> None:
        """Stop the flusher after one last flush attempt bounded by ``close_timeout``."""
        self._closing = True
        if self._task is None:
            return
        assert self._wake is not None
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.close_timeout)
        except TimeoutError:
            self._task.cancel()
            left = self.stats().buffered
            logger.warning("attempt recorder closed with %d record(s) not written", left)
        self._task = None

    async def flush(self) -> bool:
        """Write everything buffered now. True when the buffer was emptied."""
        while True:
            batch = self._take_batch()
            if not batch:
                return True
            if not await self._write(batch):
                return False

    async def _run(self) -> None:
        assert self._wake is not None
        backoff = self.flush_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            ok = await self.flush()
            if self._closing and (ok or self._task is None):
                return
            if ok:
                backoff = self.flush_interval
            else:
                # The sink is down: wait longer each time, up to max_backoff.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _take_batch(self) -> list[AttemptRecord]:
        with self._lock:
            n = min(self.batch_size, len(self._buffer))
            return [self._buffer.popleft() for _ in range(n)]

    async def _write(self, batch: list[AttemptRecord]) -> bool:
        try:
            await self.sink.write(batch)
        except Exception as exc:  # any sink failure: keep the batch
            with self._lock:
                self._failures += 1
                # Put the batch back in front, keeping the newest records if over capacity.
                room = self.capacity - len(self._buffer)
                kept = batch[-room:] if room > 0 else []
                self._dropped += len(batch) - len(kept)
                self._buffer.extendleft(reversed(kept))
            logger.warning("attempt sink write failed (%s); %d record(s) kept", exc, len(kept))
            return False
        with self._lock:
            self._written += len(batch)
        return True


class AttemptRecordingInterceptor(Interceptor):
    """Worker interceptor that records every activity attempt (local ones included)."""

    def __init__(self, recorder: AttemptRecorder, worker_identity: str | None = None) -> None:
        self.recorder = recorder
        self.worker_identity = worker_identity

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _AttemptInbound(next, self.recorder, self.worker_identity)


class _AttemptInbound(ActivityInboundInterceptor):
    def __init__(
        self, next: ActivityInboundInterceptor, recorder: AttemptRecorder, identity: str | None
    ) -> None:
        super().__init__(next)
        self._recorder = recorder
        self._identity = identity

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = datetime.now(UTC)
        try:
            result = await super().execute_activity(input)
        except BaseException as exc:
            self._safe_record(started, exc)
            raise
        self._safe_record(started, None)
        return result

    def _safe_record(self, started: datetime, exc: BaseException | None) -> None:
        try:
            rec = _attempt_record(activity.info(), started, exc)
            self._recorder.record(replace(rec, worker_identity=self._identity))
        except Exception:  # never let recording change the outcome
            logger.exception("could not record an activity attempt")


def _attempt_record(
    info: activity.Info, started: datetime, exc: BaseException | None
) -> AttemptRecord:
    rec = AttemptRecord(
        # Standalone activities (no workflow) leave these unset; wfmon runs none today.
        namespace=info.workflow_namespace or info.namespace,
        workflow_id=info.workflow_id or "",
        run_id=info.workflow_run_id or "",
        workflow_type=info.workflow_type or "",
        activity_id=info.activity_id,
        activity_type=info.activity_type,
        attempt=info.attempt,
        is_local=info.is_local,
        task_queue=info.task_queue,
        scheduled_at=info.current_attempt_scheduled_time,
        started_at=started,
        ended_at=datetime.now(UTC),
        outcome=AttemptOutcome.COMPLETED,
    )
    if exc is None:
        return _past_deadline(info, rec) or rec
    if isinstance(exc, asyncio.CancelledError | CancelledError):
        # The SDK cancels an attempt for several reasons; a timeout is not a user's cancel.
        details = activity.cancellation_details()
        timed_out = details is not None and details.timed_out
        return replace(
            rec,
            outcome=AttemptOutcome.TIMED_OUT if timed_out else AttemptOutcome.CANCELED,
            failure_type="TimeoutError" if timed_out else "CancelledError",
            failure_message=str(exc) or ("timed out" if timed_out else "canceled"),
        )
    stack = "".join(traceback.format_exception(exc))[-MAX_STACK_CHARS:]
    late = _past_deadline(info, rec)
    if late is not None:
        return replace(late, failure_stack=stack)
    if isinstance(exc, ApplicationError):
        return replace(
            rec,
            outcome=AttemptOutcome.FAILED,
            failure_type=exc.type or type(exc).__name__,
            failure_message=exc.message,
            failure_stack=stack,
            non_retryable=exc.non_retryable,
        )
    return replace(
        rec,
        outcome=AttemptOutcome.FAILED,
        failure_type=type(exc).__name__,
        failure_message=str(exc),
        failure_stack=stack,
        non_retryable=False,
    )


def _past_deadline(info: activity.Info, rec: AttemptRecord) -> AttemptRecord | None:
    """A TIMED_OUT record when the attempt ended after Temporal's deadline for it.

    Temporal times an attempt out on the server; a worker that does not heartbeat often
    only learns of it when its late result is rejected. What Temporal decided is what
    counts, so such an attempt is recorded as timed out. (Compares the worker's clock
    with the server's start time: skew of a few ms can matter only at the boundary.)
    """
    if info.is_local:
        return None  # local activities are timed out by the worker itself
    deadlines: list[tuple[datetime, str]] = []
    if info.start_to_close_timeout:
        deadlines.append((info.started_time + info.start_to_close_timeout, "start_to_close"))
    if info.schedule_to_close_timeout:
        deadlines.append(
            (info.scheduled_time + info.schedule_to_close_timeout, "schedule_to_close")
        )
    for deadline, kind in sorted(deadlines):
        if rec.ended_at > deadline:
            return replace(
                rec,
                outcome=AttemptOutcome.TIMED_OUT,
                failure_type="TimeoutError",
                failure_message=(
                    f"{kind} timeout: the attempt ended after Temporal's deadline "
                    f"({deadline.isoformat()}); its {rec.outcome.value} result was discarded"
                ),
            )
    return None
