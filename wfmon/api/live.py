"""Live push: one LISTEN connection per web-app process, fanned out to the open streams.

:class:`LiveHub` runs in the app's lifespan. It holds ONE PostgreSQL connection that
LISTENs on the live channel (:mod:`wfmon.db.notify`, migrations/0520), however many pages
are open, and hands each notification to the subscriptions interested in it. When that
connection drops it ends every open stream (the pages fall back to polling), reconnects
with exponential backoff, and accepts streams again once it listens.

Authorization: a :class:`Interest` is built by the stream endpoint AFTER the caller's
unit of work found the execution / workflow / project (a 404 otherwise), and carries the
caller's ``users.id``: an event reaches a subscription only when it names that owner AND
that execution (or workflow, or project). That is the executions' read rule (owner only),
so a stream never tells one user about another's runs. Events carry ids only; the page
refetches through the API, under row-level security.

Attempts written by an insert-only attempt writer (users' own workers, migrations/0600)
name their run by its Temporal ids instead (:class:`RecordedRun`): the writer may read no
execution, so it cannot name the owner. Such a note reaches the execution streams whose
execution (found under their caller's RLS when they opened) is that run; they refetch
under RLS like any other.

Guarantees: :meth:`LiveHub.publish` never blocks (a full subscription queue drops the
event: the next refetch shows everything anyway); :meth:`LiveHub.close_streams` may be
called from any thread (server shutdown) and ends every stream promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

import psycopg

from wfmon.db import notify

log = logging.getLogger(__name__)

#: Events a subscription holds before it drops new ones (its page refetches everything).
QUEUE_SIZE: Final = 64


class Topic(StrEnum):
    """What a stream watches: one execution, a workflow's history, a project's attention."""

    EXECUTION = "execution"
    WORKFLOW = "workflow"
    ATTENTION = "attention"


@dataclass(frozen=True)
class LiveEvent:
    """One notification: which execution changed, and whose it is (ids only)."""

    execution_id: UUID
    project_id: UUID
    workflow_id: UUID | None
    owner_id: UUID

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> LiveEvent | None:
        """The event of a decoded 0520 payload; None when it is not one."""
        try:
            e, p, w, u = (data.get(k) for k in notify.PAYLOAD_KEYS)
            return cls(UUID(e), UUID(p), UUID(w) if w else None, UUID(u))
        except (ValueError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class TemporalRun:
    """A run by its Temporal ids."""

    namespace: str
    workflow_id: str
    run_id: str


@dataclass(frozen=True)
class RecordedRun:
    """A 0600 note: attempts of this run were recorded by an insert-only attempt writer."""

    run: TemporalRun

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> RecordedRun | None:
        """The note of a decoded 0600 payload; None when it is not one."""
        try:
            ns, wf, run = data[notify.RECORDED_RUN_KEY]
        except (ValueError, TypeError, KeyError):
            return None
        if not all(isinstance(v, str) for v in (ns, wf, run)):
            return None
        return cls(TemporalRun(ns, wf, run))


def parse_note(payload: str) -> LiveEvent | RecordedRun | None:
    """A notification's meaning (its JSON decoded once); None (ignored) when it is
    neither kind."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if notify.RECORDED_RUN_KEY in data:
        return RecordedRun.from_payload(data)
    return LiveEvent.from_payload(data)


@dataclass(frozen=True)
class Interest:
    """Events a stream may deliver: those of ``owner_id`` about ``key`` under ``topic``;
    for an execution, also the notes naming its Temporal ``run``."""

    topic: Topic
    key: UUID
    owner_id: UUID
    run: TemporalRun | None = None

    def matches(self, event: LiveEvent) -> bool:
        if event.owner_id != self.owner_id:
            return False
        if self.topic is Topic.EXECUTION:
            return event.execution_id == self.key
        if self.topic is Topic.WORKFLOW:
            return event.workflow_id == self.key
        return event.project_id == self.key


class StreamEnd(StrEnum):
    """Why a subscription ended."""

    DISCONNECTED = "the live connection to the database dropped"
    SHUTDOWN = "the server is shutting down"


class LiveUnavailable(Exception):
    """The hub is not listening (not configured, or reconnecting): the page polls."""


@dataclass(eq=False)
class Subscription:
    """One open stream's queue: events, then (last) why it ended."""

    interest: Interest
    #: The ids of executions that changed, then (last) why the stream ended.
    queue: asyncio.Queue[UUID | StreamEnd] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    dropped: int = 0

    def offer(self, item: UUID | StreamEnd) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            if isinstance(item, StreamEnd):  # the end must get through: make room
                self.queue.get_nowait()
                self.queue.put_nowait(item)
            else:
                self.dropped += 1

    async def next(self, timeout: float) -> UUID | StreamEnd | None:
        """The next changed execution's id, or the end; None after ``timeout`` seconds
        without either."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class LiveHub:
    """The process's LISTEN connection and its subscriptions (see the module docstring).

    ``database_url`` None: live push is off, :meth:`subscribe` raises
    :class:`LiveUnavailable` and pages poll.
    """

    def __init__(
        self,
        database_url: str | None,
        *,
        heartbeat: float = 15.0,
        probe_after: float = 30.0,
        backoff: tuple[float, float] = (0.5, 15.0),
    ) -> None:
        self._url = database_url
        #: Seconds between the streams' keep-alive comments (proxies close idle streams).
        self.heartbeat = heartbeat
        self._probe_after = probe_after
        #: Seconds before the first reconnect, and the most between two (doubling between).
        self.backoff = backoff
        self._subs: dict[tuple[Topic, UUID], set[Subscription]] = {}
        #: Execution streams by their execution's Temporal run (for RecordedRun notes).
        self._by_run: dict[TemporalRun, set[Subscription]] = {}
        self._listening = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        #: How many times the listener connected (1 + reconnects).
        self.connects = 0

    @property
    def enabled(self) -> bool:
        return self._url is not None

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    @property
    def subscriptions(self) -> int:
        """Open streams (readable from any thread: the values are copied at once)."""
        return sum(len(s) for s in list(self._subs.values()))

    # -- lifespan ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening in the background (returns at once; see :meth:`wait_listening`)."""
        self._loop = asyncio.get_running_loop()
        if self._url is not None and self._task is None:
            self._task = asyncio.create_task(self._run(self._url), name="wfmon-live-listener")
            self._end_streams_on_exit_signals()

    def _end_streams_on_exit_signals(self) -> None:
        """Chain SIGINT/SIGTERM to :meth:`close_streams`: on a signal uvicorn waits for open
        responses before it runs the lifespan's shutdown, and streams never end by
        themselves. The lifespan runs inside uvicorn's own handlers (in ``wfmon serve``
        and in each of its worker processes), which are called after. Signal handlers live
        on the main thread only: a server on another thread calls :meth:`close_streams`."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):  # default or ignored: no graceful shutdown to help
                continue

            def on_exit(signum: int, frame: Any, previous: Any = previous) -> None:
                self.close_streams()
                previous(signum, frame)

            signal.signal(sig, on_exit)

    async def wait_listening(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout)
        return self.listening

    async def stop(self) -> None:
        """End every stream and close the LISTEN connection."""
        self._end_all(StreamEnd.SHUTDOWN)
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def close_streams(self) -> None:
        """End every open stream now, from any thread: called when the server begins to
        shut down, because the server waits for open responses before the lifespan ends."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _on_loop(loop):
            self._begin_close()
        else:
            loop.call_soon_threadsafe(self._begin_close)

    def _begin_close(self) -> None:
        self._closing = True
        self._end_all(StreamEnd.SHUTDOWN)

    # -- subscriptions -----------------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(self, interest: Interest) -> Iterator[Subscription]:
        """A subscription for the block's duration. Raises :class:`LiveUnavailable` while
        the hub does not listen (events would be missed) or is shutting down."""
        if self._url is None:
            raise LiveUnavailable("live updates are off in this server")
        if self._closing:
            raise LiveUnavailable(StreamEnd.SHUTDOWN.value)
        if not self.listening:
            raise LiveUnavailable("live updates are reconnecting to the database")
        sub = Subscription(interest)
        key = (interest.topic, interest.key)
        self._subs.setdefault(key, set()).add(sub)
        if interest.run is not None:
            self._by_run.setdefault(interest.run, set()).add(sub)
        try:
            yield sub
        finally:
            _discard(self._subs, key, sub)
            if interest.run is not None:
                _discard(self._by_run, interest.run, sub)

    def publish(self, event: LiveEvent) -> int:
        """Hand ``event`` to every matching subscription; returns how many."""
        delivered = 0
        keys = (
            (Topic.EXECUTION, event.execution_id),
            (Topic.WORKFLOW, event.workflow_id),
            (Topic.ATTENTION, event.project_id),
        )
        for topic, key in keys:
            if key is None:
                continue
            for sub in self._subs.get((topic, key), ()):
                if sub.interest.matches(event):
                    sub.offer(event.execution_id)
                    delivered += 1
        return delivered

    def publish_recorded(self, note: RecordedRun) -> int:
        """Hand ``note`` to the execution streams open on its run; returns how many."""
        subs = self._by_run.get(note.run, ())
        for sub in subs:
            sub.offer(sub.interest.key)
        return len(subs)

    def _end_all(self, why: StreamEnd) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.offer(why)

    # -- the listener ------------------------------------------------------------------

    async def _run(self, url: str) -> None:
        delay = self.backoff[0]
        while not self._closing:
            try:
                self._conn = await notify.open_listener(url)
                self.connects += 1
                delay = self.backoff[0]
                self._listening.set()
                log.info("live updates: listening (connection %d)", self.connects)
                async for payload in notify.payloads(self._conn, idle=self._probe_after):
                    note = parse_note(payload)
                    if isinstance(note, LiveEvent):
                        self.publish(note)
                    elif isinstance(note, RecordedRun):
                        self.publish_recorded(note)
                    else:
                        log.warning("live updates: ignored a payload that is not an event")
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                # Never the URL or the server's message (it may name hosts or roles).
                log.warning(
                    "live updates: the database connection failed (%s); retrying in %.1f s",
                    type(exc).__name__,
                    delay,
                )
            finally:
                self._listening.clear()
                self._end_all(StreamEnd.DISCONNECTED)
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                    self._conn = None
            if self._closing:
                break
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.backoff[1])

    def listener_backend_pid(self) -> int | None:
        """The server process id of the LISTEN connection (tests end it to see a reconnect)."""
        return self._conn.info.backend_pid if self._conn is not None else None


def _discard(index: dict[Any, set[Subscription]], key: Any, sub: Subscription) -> None:
    subs = index.get(key)
    if subs is not None:
        subs.discard(sub)
        if not subs:
            del index[key]


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def hub_of(app: Any) -> LiveHub | None:
    """The app's hub (``app.state.live``), when it has one."""
    hub = getattr(getattr(app, "state", None), "live", None)
    return hub if isinstance(hub, LiveHub) else None


__all__ = [
    "Interest",
    "LiveEvent",
    "LiveHub",
    "LiveUnavailable",
    "RecordedRun",
    "StreamEnd",
    "Subscription",
    "TemporalRun",
    "Topic",
    "hub_of",
]
