"""Web app tests: the real app served by uvicorn on a free port, over real services.

A builder worker and the sync worker run on a background event loop (as in
tests/sync/conftest.py); executions are run on the Temporal dev server and synced into
PostgreSQL; requests go through HTTP with real tokens. Nothing under test is replaced.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowFailureError, WorkflowHandle

from tests.api.seed import Person, make_person
from wfmon.api.app import RunningServer, create_app, start_server
from wfmon.connections import Keyring, NetworkPolicy, generate_key
from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.model import WorkflowDefinition
from wfmon.runtime import start_builder_run
from wfmon.runtime.attempts import AttemptRecorder
from wfmon.runtime.client import RunContext
from wfmon.runtime.postgres_sink import PostgresAttemptSink
from wfmon.settings import Settings
from wfmon.sync.messages import ExecutionRef, SyncOutcome
from wfmon.sync.worker import sync_now
from wfmon.testing import BuilderAndSyncHarness, seed_execution

#: Fixed: conftest modules may be imported twice (pytest and `from tests.api.conftest`).
JWT_SECRET = "wfmon-api-tests-secret"


class SyncHarness(BuilderAndSyncHarness):
    """Builder (recording attempts in PostgreSQL, as in production) and sync workers."""

    def __init__(self, address: str, db: Database, database_url: str) -> None:
        # The attempt sink has its own small pool, like a worker's.
        self.sink = PostgresAttemptSink(Database(database_url, max_size=2))
        super().__init__(
            address,
            db,
            recorder=AttemptRecorder(self.sink, flush_interval=0.1),
            queue_prefix="wfmon-api",
        )
        self.recorder: AttemptRecorder

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.sink.close()


# -- HTTP -----------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Http:
    """A tiny HTTP client (standard library) for the app under test."""

    base: str
    token: str | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def as_(self, token: str | None) -> Http:
        return Http(self.base, token)

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            parts = urlsplit(self.base)
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
            self._local.conn = conn
        return conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for retry in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=h)
                resp = conn.getresponse()
                payload = resp.read()
                return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if retry:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.request("DELETE", path, **kw)


# -- the world the tests look at ------------------------------------------------------------

FAST = {"interval": "100ms"}

DEFINITION: dict[str, Any] = {
    "id": "orders",
    "name": "orders",
    "version": 1,
    "nodes": [
        {
            "id": "fetch",
            "component": "flaky",
            "config": {"fail_times": 1, "output": {"rows": 3}},
            "retry_policy": {"strategy": "fail_after_attempts", "max_attempts": 3, **FAST},
        },
        {
            "id": "charge",
            "component": "flaky",
            "config": {"fail_times": 5, "error_type": "CardDeclined"},
            "retry_policy": {"strategy": "fail_after_attempts", "max_attempts": 2, **FAST},
        },
    ],
    "edges": [{"source": "fetch", "target": "charge"}],
}

SUCCESS: dict[str, Any] = {
    "id": "orders",
    "name": "orders",
    "version": 1,
    "nodes": [
        {"id": "a", "component": "transform", "config": {"set": {"x": 1}}},
        {"id": "b", "component": "transform", "config": {"pick": {"x": "upstream.a.x"}}},
    ],
    "edges": [{"source": "a", "target": "b"}],
}


def sleeper(seconds: float) -> dict[str, Any]:
    return {
        "id": "orders",
        "name": "orders",
        "version": 1,
        "nodes": [{"id": "nap", "component": "sleep", "config": {"seconds": seconds}}],
        "edges": [],
    }


@dataclass
class World:
    """Users, executions and the running app, shared by the session's web tests."""

    harness: SyncHarness
    db: Database
    server: RunningServer
    alice: Person
    bob: Person
    executions: dict[str, UUID]
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, who: Person | None = None) -> Http:
        return Http(self.server.url, who.token if who else None)

    def run(self, owner: Person, definition: dict[str, Any], *, wait: bool = True) -> Any:
        return self.harness.run(run_builder(self.harness, owner, definition, wait=wait))

    def sync(self, handle: WorkflowHandle[Any, Any]) -> UUID:
        assert handle.result_run_id is not None
        ref = ExecutionRef(self.harness.client.namespace, handle.id, handle.result_run_id)
        assert self.harness.run(self.harness.recorder.flush()), "attempts written"
        result = self.harness.run(sync_now(self.harness.client, ref))
        assert result.outcome is SyncOutcome.SYNCED, result.error
        with self.db.as_system() as conn:
            row = conn.execute(
                "SELECT id FROM workflow_executions WHERE temporal_workflow_id = %s "
                "AND temporal_run_id = %s",
                (ref.workflow_id, ref.run_id),
            ).fetchone()
        assert row is not None
        return UUID(str(row["id"]))


async def run_builder(
    h: SyncHarness, owner: Person, definition: dict[str, Any], *, wait: bool = True
) -> WorkflowHandle[Any, Any]:
    ctx = RunContext(
        workflow_id=str(owner.workflow.id),
        project_id=str(owner.project.id),
        user_id=str(owner.user.id),
    )
    handle = await start_builder_run(
        h.client,
        WorkflowDefinition.model_validate(definition),
        {"order": 42},
        context=ctx,
        task_queue=h.builder_queue,
    )
    if wait:
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    return handle


@pytest.fixture(scope="session")
def api_db(database_url: str) -> Iterator[Database]:
    with Database(database_url, max_size=24) as database:
        yield database


@pytest.fixture(scope="session")
def world(endpoints: Endpoints, api_db: Database, database_url: str) -> Iterator[World]:
    harness = SyncHarness(endpoints.temporal_address, api_db, database_url).start()
    settings = Settings(
        jwt_secret=SecretStr(JWT_SECRET), temporal_address=endpoints.temporal_address
    )
    app = create_app(
        settings,
        db=api_db,
        temporal_address=endpoints.temporal_address,
        keyring=Keyring.parse(generate_key("k1")),
        policy=NetworkPolicy.permissive_local(),
    )
    server = start_server(app)
    try:
        alice = make_person(api_db, "alice", JWT_SECRET, DEFINITION)
        bob = make_person(api_db, "bob", JWT_SECRET, SUCCESS)
        w = World(harness, api_db, server, alice, bob, {}, settings)
        failed = w.run(alice, DEFINITION)
        ok = w.run(alice, SUCCESS)
        bobs = w.run(bob, SUCCESS)
        terminated = w.run(alice, sleeper(60), wait=False)
        harness.run(terminated.terminate("stopped by the test"))
        w.executions.update(
            failed=w.sync(failed),
            completed=w.sync(ok),
            terminated=w.sync(terminated),
            bob=w.sync(bobs),
            timed_out=seed_execution(api_db, alice, components=3, status="timed_out"),
            big=seed_execution(api_db, alice, components=5000),
        )
        yield w
    finally:
        server.stop()
        harness.stop()
