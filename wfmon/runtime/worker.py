"""The builder worker: the builder workflow plus every registered component activity."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from wfmon.runtime.attempts import AttemptRecorder, AttemptRecordingInterceptor
from wfmon.runtime.components import ComponentRegistry, builtin_registry
from wfmon.runtime.workflow import BUILDER_TASK_QUEUE, BuilderWorkflow

if TYPE_CHECKING:
    from wfmon.components import Components
    from wfmon.db import Database


def build_worker(
    client: Client,
    *,
    task_queue: str = BUILDER_TASK_QUEUE,
    registry: ComponentRegistry | None = None,
    recorder: AttemptRecorder | None = None,
    extra_interceptors: Sequence[Interceptor] = (),
    max_concurrent_activities: int = 100,
) -> Worker:
    """A Worker for ``task_queue`` running :class:`BuilderWorkflow` and the components.

    With ``recorder``, every activity attempt is recorded through it (the caller owns the
    recorder's lifetime: ``async with recorder:`` around ``worker.run()``).
    """
    components = registry if registry is not None else builtin_registry()
    interceptors: list[Interceptor] = list(extra_interceptors)
    if recorder is not None:
        interceptors.insert(0, AttemptRecordingInterceptor(recorder, client.identity))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BuilderWorkflow],
        activities=list(components.values()),
        interceptors=interceptors,
        max_concurrent_activities=max_concurrent_activities,
    )


async def run_worker_until_signalled(
    *workers: Worker, recorder: AttemptRecorder | None = None
) -> None:
    """Run ``workers`` until SIGINT or SIGTERM, then shut them down gracefully (in-flight
    activities finish or are cancelled by the SDK) and flush the recorder."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if recorder is not None:
            recorder.start()
        async with contextlib.AsyncExitStack() as running:
            for w in workers:
                await running.enter_async_context(w)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if recorder is not None:
            await recorder.close()


@dataclass
class ConnectionComponents:
    """The connection-backed components added to a registry, or why they were not."""

    components: Components | None = None
    database: Database | None = None
    disabled_reason: str | None = None

    async def aclose(self) -> None:
        if self.components is not None:
            await self.components.aclose()

    def close(self) -> None:
        if self.database is not None:
            self.database.close()


def add_connection_components(
    registry: ComponentRegistry, database_url: str | None
) -> ConnectionComponents:
    """Register postgresql-query, redis-command, typescript-processor and cache-aside when
    their prerequisites are there (a reachable database, ``WFMON_SECRET_KEY``); otherwise
    leave ``registry`` as it is and say why. Never raises for a missing prerequisite."""
    from wfmon.components import register_components
    from wfmon.connections.crypto import Keyring
    from wfmon.connections.errors import KeyringError
    from wfmon.connections.resolver import ConnectionResolver
    from wfmon.db import Database

    if database_url is None:
        return ConnectionComponents(disabled_reason="no database configured")
    try:
        keyring = Keyring.from_settings()
    except KeyringError as exc:
        return ConnectionComponents(disabled_reason=str(exc))
    database = Database(database_url)
    try:
        database.open(timeout=10)
    except Exception as exc:  # down at start: the built-in components still run
        database.close()
        return ConnectionComponents(disabled_reason=f"database unavailable ({exc})")
    components = register_components(registry, ConnectionResolver(database, keyring))
    return ConnectionComponents(components=components, database=database)
