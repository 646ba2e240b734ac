"""Sync tests: a builder worker and the sync worker on a background event loop.

The sync worker polls the real ``wfmon-sync`` queue (one coordinator per namespace), the
builder worker a queue of its own. Tests hand coroutines to :meth:`SyncHarness.run`.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from wfmon.db import Database
from wfmon.db.accounts import create_project, create_user, create_workflow
from wfmon.db.rows import Project, User, Workflow
from wfmon.dev.services import Endpoints
from wfmon.runtime.worker import build_worker
from wfmon.sync.activities import SyncOptions
from wfmon.sync.worker import build_sync_worker

T = TypeVar("T")


class SyncHarness:
    """A Temporal client plus builder and sync workers on their own loop in a thread."""

    def __init__(self, address: str, db: Database) -> None:
        self.address = address
        self.db = db
        self.builder_queue = f"wfmon-builder-{uuid.uuid4().hex[:8]}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._serving: asyncio.Future[None] | None = None
        self.client: Client

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 180) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> SyncHarness:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self.client = await Client.connect(self.address)
        self._stop = asyncio.Event()
        workers = [
            build_worker(self.client, task_queue=self.builder_queue),
            build_sync_worker(self.client, self.db, options=SyncOptions(lease_seconds=15)),
        ]
        self._serving = asyncio.ensure_future(self._serve(workers))

    async def _serve(self, workers: list[Worker]) -> None:
        assert self._stop is not None
        async with workers[0], workers[1]:
            await self._stop.wait()

    def stop(self) -> None:
        async def stop() -> None:
            assert self._stop is not None and self._serving is not None
            self._stop.set()
            await self._serving

        try:
            self.run(stop(), timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@pytest.fixture(scope="session")
def sync_harness(endpoints: Endpoints, db: Database) -> Iterator[SyncHarness]:
    harness = SyncHarness(endpoints.temporal_address, db).start()
    try:
        yield harness
    finally:
        harness.stop()


@dataclass(frozen=True)
class Owner:
    """A user with a project and a workflow, as the builder records them in the memo."""

    user: User
    project: Project
    workflow: Workflow


def make_owner(db: Database, name: str) -> Owner:
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
    return Owner(user, project, workflow)


@pytest.fixture(scope="session")
def alice(db: Database) -> Owner:
    return make_owner(db, "alice")


@pytest.fixture(scope="session")
def bob(db: Database) -> Owner:
    return make_owner(db, "bob")
