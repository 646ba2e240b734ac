"""The bounded buffer between the interceptor and a sink, flushed by a background task.

Guarantee: :meth:`AttemptRecorder.record` only appends to a bounded in-memory buffer (a
lock and a deque append), so recording never makes an activity wait and never fails it.
A background task writes batches to the :class:`AttemptSink`; when the sink is down,
batches stay buffered and are retried with backoff; when the buffer is full the oldest
records are dropped, counted in :attr:`RecorderStats.dropped` and reported by a warning
(at most one every ``drop_log_interval`` seconds, with the running total).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from wfmon.attempts.records import AttemptRecord

logger = logging.getLogger("wfmon.attempts")


class AttemptSink(Protocol):
    """Where attempt records end up (PostgreSQL in production).

    ``write`` stores the whole batch or raises; a raise means nothing of the batch needs
    to be considered stored (the recorder will offer it again, so writes should be
    idempotent on (namespace, workflow_id, run_id, activity_id, attempt)). Exceptions'
    messages are logged, so they must carry no secret.
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
    """Counters since the recorder was made."""

    #: Records handed to :meth:`AttemptRecorder.record`.
    recorded: int
    #: Records the sink accepted.
    written: int
    #: Records lost because the buffer was full (the oldest go first).
    dropped: int
    #: Failed sink writes (each kept its batch for a later try).
    write_failures: int
    #: Records waiting in the buffer now.
    buffered: int


class AttemptRecorder:
    """Bounded buffer + background flusher between the interceptor and a sink.

    The flusher starts on the first :meth:`record` made on a running event loop (or
    explicitly: :meth:`start`, ``async with recorder:``). :meth:`close` flushes what it can
    within ``close_timeout`` seconds; so does the flusher when its event loop shuts it down
    (``asyncio.run`` ending). ``record()`` is safe from any thread.
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
        drop_log_interval: float = 10.0,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be at least 1")
        if flush_interval <= 0 or max_backoff <= 0 or close_timeout < 0:
            raise ValueError("flush_interval and max_backoff must be > 0, close_timeout >= 0")
        self.sink = sink
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_backoff = max_backoff
        self.close_timeout = close_timeout
        self.drop_log_interval = drop_log_interval
        self._buffer: deque[AttemptRecord] = deque()
        self._lock = threading.Lock()
        self._recorded = self._written = self._dropped = self._failures = 0
        self._dropped_logged = 0
        self._drop_logged_at = float("-inf")
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
            self._report_drops()
            self._ensure_flusher()
            if full_batch and self._loop is not None and self._wake is not None:
                self._loop.call_soon_threadsafe(self._wake.set)
        except Exception:  # recording must never fail the activity
            logger.exception("wfmon.attempts: could not buffer an attempt record")

    def stats(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(
                recorded=self._recorded,
                written=self._written,
                dropped=self._dropped,
                write_failures=self._failures,
                buffered=len(self._buffer),
            )

    def _report_drops(self) -> None:
        now = time.monotonic()
        with self._lock:
            new = self._dropped - self._dropped_logged
            if not new or now - self._drop_logged_at < self.drop_log_interval:
                return
            self._dropped_logged, self._drop_logged_at = self._dropped, now
            total = self._dropped
        logger.warning(
            "wfmon.attempts: buffer full (capacity %d): dropped %d attempt record(s), "
            "%d in total (is the database reachable?)",
            self.capacity,
            new,
            total,
        )

    def _ensure_flusher(self) -> None:
        """Start the flusher on the caller's event loop if none runs (no loop: later)."""
        if self._task is not None and not self._task.done() and not self._closing:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a thread without a loop (sync activity): the loop's next record starts it
        if not self._closing:
            self.start()

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
        if self._task is None or self._task.done():
            self._closing = False
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="wfmon-attempt-recorder")

    async def close(self) -> None:
        """Stop the flusher after one last flush attempt bounded by ``close_timeout``."""
        self._closing = True
        task = self._task
        if task is None or task.done():
            self._task = None
            if self.stats().buffered:
                await self._final_flush()
            return
        assert self._wake is not None
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.close_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._warn_unwritten()
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
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval)
                self._wake.clear()
                ok = await self.flush()
                if self._closing:
                    return
                if ok:
                    backoff = self.flush_interval
                else:
                    # The sink is down: wait longer each time, up to max_backoff.
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
        except asyncio.CancelledError:
            # The loop is shutting down (asyncio.run ends) or close() gave up: one bounded
            # last try, so a worker that simply stops loses nothing the sink can take.
            if not self._closing:
                await self._final_flush()
            raise

    async def _final_flush(self) -> None:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self.flush(), self.close_timeout)
        self._warn_unwritten()

    def _warn_unwritten(self) -> None:
        left = self.stats().buffered
        if left:
            logger.warning("wfmon.attempts: stopped with %d attempt record(s) not written", left)

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
                failures = self._failures
            # First failure, then every 10th: a database that is down for an hour should
            # not fill the log. The sink's messages carry no secrets (AttemptSink).
            if failures == 1 or failures % 10 == 0:
                logger.warning(
                    "wfmon.attempts: attempt sink write failed (%s: %s); %d record(s) kept, "
                    "%d failure(s) so far",
                    type(exc).__name__,
                    exc,
                    len(kept),
                    failures,
                )
            self._report_drops()
            return False
        with self._lock:
            self._written += len(batch)
        return True
