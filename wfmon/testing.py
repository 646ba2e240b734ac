"""Temporal workers for tests: a client and workers on their own event loop in a thread.

Synchronous test code (pytest without an async plugin, scripts) builds one harness and
hands coroutines to :meth:`WorkerHarness.run`. Subclasses say which workers run
(:meth:`make_workers`); :class:`BuilderAndSyncHarness` runs wfmon's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from wfmon.db import Database
from wfmon.db.accounts import create_project, create_user, create_workflow
from wfmon.db.rows import Project, User, Workflow
from wfmon.model import WorkflowDefinition
from wfmon.runtime.attempts import AttemptRecorder
from wfmon.runtime.client import RunContext, start_builder_run
from wfmon.runtime.worker import build_worker
from wfmon.sync.activities import SyncOptions
from wfmon.sync.worker import build_sync_worker

T = TypeVar("T")


class WorkerHarness:
    """Connects to ``address`` / ``namespace`` and runs :meth:`make_workers` until stopped."""

    def __init__(self, address: str, namespace: str = "default") -> None:
        self.address = address
        self.namespace = namespace
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._serving: asyncio.Future[None] | None = None
        self.client: Client

    def make_workers(self, client: Client) -> Sequence[Worker]:
        raise NotImplementedError

    async def prepare(self) -> None:
        """Runs on the harness loop before connecting (e.g. create the namespace)."""

    async def cleanup(self) -> None:
        """Runs on the harness loop after the workers stopped."""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 180) -> T:
        """Run ``coro`` on the harness loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> Self:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        await self.prepare()
        self.client = await Client.connect(self.address, namespace=self.namespace)
        self._stop = asyncio.Event()
        self._serving = asyncio.ensure_future(self._serve(self.make_workers(self.client)))

    async def _serve(self, workers: Sequence[Worker]) -> None:
        assert self._stop is not None
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            await self._stop.wait()

    def stop(self) -> None:
        async def stop() -> None:
            assert self._stop is not None and self._serving is not None
            self._stop.set()
            await self._serving
            await self.cleanup()

        try:
            self.run(stop(), timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


class BuilderAndSyncHarness(WorkerHarness):
    """A builder worker on a queue of its own (attempts recorded when ``recorder`` is given)
    and the sync worker on the real sync queue."""

    def __init__(
        self,
        address: str,
        db: Database,
        *,
        namespace: str = "default",
        recorder: AttemptRecorder | None = None,
        queue_prefix: str = "wfmon-builder",
    ) -> None:
        super().__init__(address, namespace)
        self.db = db
        self.recorder = recorder
        self.builder_queue = f"{queue_prefix}-{uuid.uuid4().hex[:8]}"

    def make_workers(self, client: Client) -> Sequence[Worker]:
        if self.recorder is not None:
            self.recorder.start()
        return [
            build_worker(client, task_queue=self.builder_queue, recorder=self.recorder),
            build_sync_worker(client, self.db, options=SyncOptions(lease_seconds=15)),
        ]

    async def cleanup(self) -> None:
        if self.recorder is not None:
            await self.recorder.close()

    async def start_run(self, owner: WorkflowOwner | None, kind: str) -> WorkflowHandle[Any, Any]:
        """Start a builder execution of :func:`definition` ``kind`` (input ``{"n": 1}``) on
        this harness's builder queue, recorded as ``owner``'s when given."""
        return await start_builder_run(
            self.client,
            definition(kind),
            {"n": 1},
            context=owner.run_context() if owner else None,
            task_queue=self.builder_queue,
        )


# -- test data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowOwner:
    """A user with a project and a workflow, as the builder records them in the memo."""

    user: User
    project: Project
    workflow: Workflow

    def run_context(self) -> RunContext:
        """The ids a builder run records for this owner."""
        return RunContext(
            workflow_id=str(self.workflow.id),
            project_id=str(self.project.id),
            user_id=str(self.user.id),
        )


def make_owner(db: Database, name: str) -> WorkflowOwner:
    """A new user (unique email) with one project and one workflow at version 1."""
    auth_id = uuid.uuid4()
    with db.as_system() as conn:
        user = create_user(
            conn, auth_user_id=auth_id, email=f"{name}-{auth_id.hex[:6]}@example.com"
        )
    with db.as_user(auth_id) as conn:
        project = create_project(conn, name=f"{name} project", created_by=user.id)
        workflow = create_workflow(
            conn, project_id=project.id, created_by=user.id, name=f"{name} flow", definition={}
        )
    return WorkflowOwner(user, project, workflow)


FAST_RETRIES = {"interval": "100ms"}


def definition(kind: str) -> WorkflowDefinition:
    """Small builder workflows: ``success`` (2 transforms), ``retry`` (flaky, one expected
    retry), ``slow`` (sleeps a few seconds), anything else (always-fail)."""
    nodes: list[dict[str, Any]]
    edges: list[dict[str, str]] = []
    if kind == "success":
        nodes = [
            {"id": "a", "component": "transform", "config": {"set": {"x": 1}}},
            {"id": "b", "component": "transform", "config": {"pick": {"x": "upstream.a.x"}}},
        ]
        edges = [{"source": "a", "target": "b"}]
    elif kind == "retry":
        policy = {"strategy": "fail_after_attempts", "max_attempts": 3, **FAST_RETRIES}
        nodes = [
            {"id": "flaky", "component": "flaky", "config": {"fail_times": 1},
             "retry_policy": policy}
        ]  # fmt: skip
    elif kind == "slow":
        nodes = [{"id": "nap", "component": "sleep", "config": {"seconds": 4}}]
    else:
        nodes = [{"id": "boom", "component": "always-fail"}]
    return WorkflowDefinition.model_validate(
        {"id": f"wf-{kind}", "name": kind, "version": 1, "nodes": nodes, "edges": edges}
    )
