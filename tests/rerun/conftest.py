"""Re-run tests: the real app over real services, with a builder worker that runs the
connection components (a PostgreSQL query node is what fails, then gets fixed).

The builder worker records every attempt in PostgreSQL (as in production) and the sync
worker runs next to it (``SyncHarness`` of the API tests, with the four connection
components registered); the app is served by uvicorn on a free port; executions are run
on the session's Temporal dev server and synced.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from pydantic import SecretStr
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Worker

from tests.api.conftest import JWT_SECRET, Http, SyncHarness
from tests.api.seed import Person, make_person
from tests.components.conftest import scratch_pg_url as scratch_pg_url  # the scratch database
from wfmon.api.app import RunningServer, create_app, start_server
from wfmon.components import Components, DenoSandbox, register_components
from wfmon.connections import ConnectionResolver, Keyring, NetworkPolicy, create_connection
from wfmon.connections.crypto import generate_key
from wfmon.db import Database
from wfmon.db.reruns import find_execution_id
from wfmon.dev.services import Endpoints
from wfmon.model import WorkflowDefinition
from wfmon.runtime import builtin_registry, start_builder_run
from wfmon.runtime.worker import build_worker
from wfmon.settings import Settings
from wfmon.sync.activities import SyncOptions
from wfmon.sync.messages import ExecutionRef, SyncOutcome
from wfmon.sync.worker import build_sync_worker, sync_now

LOCAL = NetworkPolicy(allow_loopback=True)


class RerunHarness(SyncHarness):
    """Builder (with the connection components, attempts in PostgreSQL) and sync workers."""

    def __init__(
        self, address: str, db: Database, database_url: str, keyring: Keyring, home: Path
    ) -> None:
        super().__init__(address, db, database_url)
        self.keyring = keyring
        self.home = home
        self.components: Components | None = None

    def make_workers(self, client: Client) -> Sequence[Worker]:
        self.recorder.start()
        registry = builtin_registry()
        self.components = register_components(
            registry,
            ConnectionResolver(self.db, self.keyring),
            policy=LOCAL,
            sandbox=DenoSandbox(self.home),
        )
        return [
            build_worker(
                client, task_queue=self.builder_queue, registry=registry, recorder=self.recorder
            ),
            build_sync_worker(client, self.db, options=SyncOptions(lease_seconds=15)),
        ]

    async def cleanup(self) -> None:
        await super().cleanup()
        if self.components is not None:
            await self.components.aclose()


def restock_flow(table: str, connection_id: str) -> dict[str, Any]:
    """prepare (transform) -> query (PostgreSQL: counts ``table``) -> report (transform)."""
    return {
        "id": "restock",
        "name": "restock",
        "version": 1,
        "nodes": [
            {"id": "prepare", "component": "transform", "config": {"set": {"sku": "A-1"}}},
            {
                "id": "query",
                "component": "postgresql-query",
                "connection_id": connection_id,
                "config": {"sql": f"SELECT count(*)::int AS n FROM {table}"},
                "retry_policy": {"strategy": "no_retries"},
            },
            {
                "id": "report",
                "component": "transform",
                "config": {"pick": {"n": "upstream.query.rows.0.n", "sku": "workflow.sku"}},
            },
        ],
        "edges": [
            {"source": "prepare", "target": "query"},
            {"source": "query", "target": "report"},
        ],
    }


@dataclass
class World:
    harness: RerunHarness
    db: Database
    server: RunningServer
    alice: Person
    bob: Person
    connection_id: str
    scratch_url: str

    def http(self, who: Person | None = None) -> Http:
        return Http(self.server.url, who.token if who else None)

    def new_table(self) -> str:
        """A table name nobody created yet (the query node fails until it exists)."""
        return f"restock_{uuid.uuid4().hex[:10]}"

    def create_table(self, table: str, rows: int) -> None:
        with psycopg.connect(self.scratch_url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {table} (id int)")
            conn.execute(f"INSERT INTO {table} SELECT generate_series(1, {rows})")

    def start(self, owner: Person, definition: dict[str, Any]) -> WorkflowHandle[Any, Any]:
        async def go() -> WorkflowHandle[Any, Any]:
            return await start_builder_run(
                self.harness.client,
                WorkflowDefinition.model_validate(definition),
                {"sku": "A-1"},
                context=owner.run_context(),
                task_queue=self.harness.builder_queue,
            )

        return self.harness.run(go())

    def wait(self, workflow_id: str, run_id: str | None = None) -> None:
        async def go() -> None:
            handle = self.harness.client.get_workflow_handle(workflow_id, run_id=run_id)
            with contextlib.suppress(WorkflowFailureError):
                await handle.result(follow_runs=False)

        self.harness.run(go())

    def sync(self, workflow_id: str, run_id: str) -> UUID:
        """Flush the attempts, sync the run now; its execution id."""
        ref = ExecutionRef(self.harness.client.namespace, workflow_id, run_id)
        assert self.harness.run(self.harness.recorder.flush()), "attempts written"
        result = self.harness.run(sync_now(self.harness.client, ref))
        assert result.outcome is SyncOutcome.SYNCED, result.error
        with self.db.as_system() as conn:
            found = find_execution_id(conn, ref.namespace, workflow_id, run_id)
        assert found is not None
        return found

    def run_and_sync(self, owner: Person, definition: dict[str, Any]) -> UUID:
        handle = self.start(owner, definition)
        assert handle.result_run_id is not None
        self.wait(handle.id, handle.result_run_id)
        return self.sync(handle.id, handle.result_run_id)


@pytest.fixture(scope="session")
def rerun_world(
    endpoints: Endpoints,
    database_url: str,
    scratch_pg_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    keyring = Keyring.parse(generate_key("r1"))
    with Database(database_url, max_size=12) as db:
        harness = RerunHarness(
            endpoints.temporal_address, db, database_url, keyring, tmp_path_factory.mktemp("deno")
        ).start()
        settings = Settings(
            jwt_secret=SecretStr(JWT_SECRET), temporal_address=endpoints.temporal_address
        )
        app = create_app(
            settings,
            db=db,
            temporal_address=endpoints.temporal_address,
            keyring=keyring,
            policy=LOCAL,
        )
        server = start_server(app)
        try:
            alice = make_person(db, "alice", JWT_SECRET, restock_flow("nothing_yet", "-"))
            bob = make_person(db, "bob", JWT_SECRET)
            with db.as_user(alice.auth_user_id) as conn:
                info = create_connection(
                    conn,
                    project_id=alice.project.id,
                    name="shop",
                    connection_type="postgresql",
                    url=scratch_pg_url,
                    keyring=keyring,
                    policy=LOCAL,
                )
            yield World(harness, db, server, alice, bob, str(info.id), scratch_pg_url)
        finally:
            server.stop()
            harness.stop()
