"""The builder worker: the builder workflow plus every registered component activity."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from wfmon.runtime.attempts import AttemptRecorder, AttemptRecordingInterceptor
from wfmon.runtime.components import ComponentRegistry, builtin_registry
from wfmon.runtime.workflow import BUILDER_TASK_QUEUE, BuilderWorkflow


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


async def run_worker_until_signalled(worker: Worker, recorder: AttemptRecorder | None) -> None:
    """Run ``worker`` until SIGINT or SIGTERM, then shut it down gracefully (in-flight
    activities finish or are cancelled by the SDK) and flush the recorder."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if recorder is not None:
            recorder.start()
        async with worker:
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if recorder is not None:
            await recorder.close()
