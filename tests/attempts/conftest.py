"""Own-worker tests: a user's plain Temporal worker (tests/attempts/own_greeting.py) with
``wfmon.attempts.interceptor(dsn=...)``, wfmon's sync worker and the web app, on the
session's real Temporal, PostgreSQL and a namespace of their own.

The namespace keeps the test's plain workflows apart from every other test's: it is
assigned to the test user's project, which would otherwise change where other tests'
unbuilt workflows go.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from pydantic import SecretStr
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

import wfmon.attempts
from wfmon.api.app import RunningServer, create_app, start_server
from wfmon.connections import Keyring, NetworkPolicy, generate_key
from wfmon.db import Database
from wfmon.db.namespaces import assign_namespace
from wfmon.dev.services import Endpoints
from wfmon.settings import Settings
from wfmon.sync.activities import SyncOptions
from wfmon.sync.worker import build_sync_worker
from wfmon.testing import WorkerHarness, WorkflowOwner, make_owner

# The user's workflow module must be importable by name: the workflow sandbox re-imports it.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from own_greeting import GreetingWorkflow, compose_greeting, send_postcard  # noqa: E402

NAMESPACE = "wfmon-own-workers-tests"
JWT_SECRET = "wfmon-own-workers-tests-secret"


async def ensure_namespace(address: str, namespace: str) -> None:
    """Register ``namespace`` on the dev server and wait until it answers."""
    client = await Client.connect(address)
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace,
                workflow_execution_retention_period=Duration(seconds=86400),
            )
        )
    except RPCError as exc:
        if "already" not in str(exc).lower():
            raise
    ns_client = await Client.connect(address, namespace=namespace)
    for _ in range(100):
        try:
            await ns_client.count_workflows()
            return
        except RPCError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"namespace {namespace} did not become usable")


class OwnWorkerHarness(WorkerHarness):
    """The user's worker (recording attempts through ``interceptor``) and wfmon's sync
    worker, on a background event loop."""

    def __init__(self, address: str, db: Database, interceptor: wfmon.attempts.AttemptInterceptor):
        super().__init__(address, NAMESPACE)
        self.db = db
        self.interceptor = interceptor
        self.task_queue = f"greetings-{uuid.uuid4().hex[:8]}"

    async def prepare(self) -> None:
        await ensure_namespace(self.address, NAMESPACE)

    def make_workers(self, client: Client) -> Sequence[Worker]:
        return [
            # The user's worker, as in the samples, plus the one line.
            Worker(
                client,
                task_queue=self.task_queue,
                workflows=[GreetingWorkflow],
                activities=[compose_greeting, send_postcard],
                interceptors=[self.interceptor],
            ),
            build_sync_worker(client, self.db, options=SyncOptions(lease_seconds=15)),
        ]

    async def cleanup(self) -> None:
        await self.interceptor.close()


@dataclass
class OwnWorld:
    harness: OwnWorkerHarness
    server: RunningServer
    carol: WorkflowOwner
    dave: WorkflowOwner

    def token(self, who: WorkflowOwner) -> str:
        return who.dev_token(JWT_SECRET)


@pytest.fixture(scope="session")
def recorder_url(endpoints: Endpoints, database_url: str) -> str:
    """The insert-only login of Temporal workers (after every migration, 0550 included)."""
    return endpoints.recorder_database_url


@pytest.fixture(scope="session")
def own_world(endpoints: Endpoints, db: Database, recorder_url: str) -> Iterator[OwnWorld]:
    carol = make_owner(db, "carol")
    dave = make_owner(db, "dave")
    with db.as_system() as conn:
        assign_namespace(conn, NAMESPACE, carol.project.id)
    interceptor = wfmon.attempts.interceptor(dsn=recorder_url, flush_interval=0.1)
    harness = OwnWorkerHarness(endpoints.temporal_address, db, interceptor).start()
    settings = Settings(
        jwt_secret=SecretStr(JWT_SECRET),
        temporal_address=endpoints.temporal_address,
        temporal_namespace=NAMESPACE,
    )
    app = create_app(
        settings,
        db=db,
        temporal_address=endpoints.temporal_address,
        keyring=Keyring.parse(generate_key("k1")),
        policy=NetworkPolicy.permissive_local(),
    )
    server = start_server(app)
    try:
        yield OwnWorld(harness, server, carol, dave)
    finally:
        server.stop()
        harness.stop()
