"""The worker interceptor that records every activity attempt, and :func:`interceptor`.

Temporal's history keeps only an activity's last attempt. The interceptor sees every
attempt as it ends and hands an :class:`~wfmon.attempts.AttemptRecord` to an
:class:`~wfmon.attempts.AttemptRecorder` (a bounded buffer written to a sink in the
background), so it never changes an attempt's outcome and never makes it wait.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from wfmon.attempts.recorder import AttemptRecorder, AttemptSink, RecorderStats
from wfmon.attempts.records import AttemptOutcome, AttemptRecord

logger = logging.getLogger("wfmon.attempts")

#: Longest failure stack trace kept per attempt (characters).
MAX_STACK_CHARS = 16_000


def default_identity() -> str:
    """``pid@host``, the identity the Temporal SDK gives a client by default."""
    return f"{os.getpid()}@{socket.gethostname()}"


class AttemptInterceptor(Interceptor):
    """Worker interceptor that records every activity attempt (local ones included).

    Pass it in ``Worker(..., interceptors=[...])``. Its recorder starts on the first attempt
    and flushes when the event loop ends; ``await interceptor.close()`` (or ``async with``)
    flushes at a moment of your choosing.
    """

    def __init__(self, recorder: AttemptRecorder, worker_identity: str | None = None) -> None:
        self.recorder = recorder
        self.worker_identity = worker_identity or default_identity()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _AttemptInbound(next, self.recorder, self.worker_identity)

    def stats(self) -> RecorderStats:
        """Recorded, written, dropped (buffer full) and failed-write counts so far."""
        return self.recorder.stats()

    async def close(self) -> None:
        """Flush what is buffered (bounded by the recorder's ``close_timeout``) and stop."""
        await self.recorder.close()
        closer = getattr(self.recorder.sink, "close", None)
        if callable(closer):
            await asyncio.to_thread(closer)

    async def __aenter__(self) -> AttemptInterceptor:
        self.recorder.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _AttemptInbound(ActivityInboundInterceptor):
    def __init__(
        self, next: ActivityInboundInterceptor, recorder: AttemptRecorder, identity: str
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
            info = activity.info()
            if not info.workflow_id or not info.workflow_run_id:
                return  # a standalone activity: no execution to show its attempts on
            rec = _attempt_record(info, started, exc)
            self._recorder.record(replace(rec, worker_identity=self._identity))
        except Exception:  # never let recording change the outcome
            logger.exception("wfmon.attempts: could not record an activity attempt")


def _attempt_record(
    info: activity.Info, started: datetime, exc: BaseException | None
) -> AttemptRecord:
    rec = AttemptRecord(
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


def interceptor(
    dsn: str | None = None,
    *,
    sink: AttemptSink | None = None,
    capacity: int = 10_000,
    batch_size: int = 500,
    flush_interval: float = 0.5,
    close_timeout: float = 5.0,
    worker_identity: str | None = None,
) -> AttemptInterceptor:
    """An interceptor recording every activity attempt of a Temporal worker into wfmon.

    ``Worker(client, ..., interceptors=[wfmon.attempts.interceptor(dsn=...)])`` is all a
    worker needs. ``dsn`` is a PostgreSQL URL of wfmon's database for a login role that may
    only insert attempt rows (``wfmon_recorder``, see docs/user-guide/own-workers.md);
    ``sink`` replaces the database (tests, other stores). Exactly one of the two.

    Guarantees: an activity's result, exception and timing are those it would have without
    the interceptor. Records go to a buffer of ``capacity`` records and are written in
    batches of up to ``batch_size`` every ``flush_interval`` seconds by a background task;
    while the database is unreachable they wait in the buffer (retried with backoff), and
    when it is full the oldest are dropped, counted (:meth:`AttemptInterceptor.stats`) and
    logged (``wfmon.attempts`` logger). Nothing logged contains the DSN or its password.

    Raises ``ValueError`` at once for a DSN that does not parse (naming the problem, not
    repeating the DSN) or bad sizes. The database is not contacted until the first write,
    so a worker starts while the database is down.
    """
    if (dsn is None) == (sink is None):
        raise ValueError("wfmon.attempts.interceptor() needs exactly one of dsn= or sink=")
    if sink is None:
        from wfmon.attempts.postgres import PostgresAttemptSink

        assert dsn is not None
        sink = PostgresAttemptSink(dsn)
    recorder = AttemptRecorder(
        sink,
        capacity=capacity,
        batch_size=batch_size,
        flush_interval=flush_interval,
        close_timeout=close_timeout,
    )
    return AttemptInterceptor(recorder, worker_identity)
