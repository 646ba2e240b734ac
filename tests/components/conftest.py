"""Fixtures for the component tests: a builder worker with the four components on the
real Temporal dev server, a scratch PostgreSQL database and the session Redis registered as
a project's connections, and a Deno sandbox home of the session's own."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError

from wfmon.components import DenoSandbox, register_components
from wfmon.connections import ConnectionResolver, Keyring, NetworkPolicy, create_connection
from wfmon.connections.crypto import generate_key
from wfmon.db import Database
from wfmon.dev.postgres import PostgresInstance
from wfmon.dev.services import EmbeddedServices, Endpoints
from wfmon.model import WorkflowDefinition
from wfmon.runtime import RunContext, builtin_registry, start_builder_run
from wfmon.runtime.worker import build_worker
from wfmon.testing import WorkflowOwner, make_owner

LOCAL = NetworkPolicy(allow_loopback=True)


@pytest.fixture(scope="session")
def component_keyring() -> Keyring:
    return Keyring.parse(generate_key("c1"))


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> DenoSandbox:
    return DenoSandbox(tmp_path_factory.mktemp("deno-home"))


@pytest.fixture(scope="session")
def scratch_pg_url(embedded_services: EmbeddedServices, endpoints: Endpoints) -> Iterator[str]:
    """A user's own database (owned by the table owner role) for the queries components run."""
    port = urlsplit(endpoints.database_url).port
    assert port is not None
    admin = PostgresInstance(embedded_services.state_dir / "postgres", port).url("postgres")
    name = f"wfmon_components_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER wfmon").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(endpoints.migrations_url)._replace(path=f"/{name}"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE items (
                id integer PRIMARY KEY, name text NOT NULL, price numeric(12, 4),
                created timestamptz, day date, ref uuid, blob bytea, doc jsonb,
                span interval, addr inet
            );
            INSERT INTO items VALUES
              (1, 'apple', 1.2500, '2026-01-02T03:04:05Z', '2026-01-02',
               '6f1c1c1e-8f5e-4a53-9a7b-0d1c2b3a4f5e', '\\x00ff10', '{"tags": ["red"]}',
               '90 minutes', '10.1.2.3'),
              (2, 'pear', 0.3333, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            INSERT INTO items (id, name) SELECT g, 'bulk-' || g FROM generate_series(3, 60) g;
            """
        )
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass
class World:
    """A project with a PostgreSQL and a Redis connection, and another user's project."""

    owner: WorkflowOwner
    other: WorkflowOwner
    pg: str
    redis: str
    other_redis: str
    secrets: list[str] = field(default_factory=list)

    def add_connection(
        self, db: Database, keyring: Keyring, name: str, ctype: str, url: str
    ) -> str:
        with db.as_user(self.owner.auth_user_id) as conn:
            info = create_connection(
                conn,
                project_id=self.owner.project.id,
                name=name,
                connection_type=ctype,
                url=url,
                keyring=keyring,
            )
        return str(info.id)


@pytest.fixture(scope="module")
def world(
    db: Database, component_keyring: Keyring, scratch_pg_url: str, endpoints: Endpoints
) -> World:
    owner = make_owner(db, "comp")
    other = make_owner(db, "other")
    with db.as_user(owner.auth_user_id) as conn:
        pg = create_connection(
            conn,
            project_id=owner.project.id,
            name="scratch",
            connection_type="postgresql",
            url=scratch_pg_url,
            keyring=component_keyring,
        )
        rd = create_connection(
            conn,
            project_id=owner.project.id,
            name="cache",
            connection_type="redis",
            url=endpoints.redis_url,
            keyring=component_keyring,
        )
    with db.as_user(other.auth_user_id) as conn:
        orc = create_connection(
            conn,
            project_id=other.project.id,
            name="theirs",
            connection_type="redis",
            url=endpoints.redis_url,
            keyring=component_keyring,
        )
    pw = urlsplit(scratch_pg_url).password
    return World(
        owner=owner,
        other=other,
        pg=str(pg.id),
        redis=str(rd.id),
        other_redis=str(orc.id),
        secrets=[scratch_pg_url, *([pw] if pw else [])],
    )


@dataclass
class Outcome:
    """How one execution ended, with what the history says about it."""

    result: dict[str, Any] | None
    error: ApplicationError | None
    attempts: dict[str, int]
    history_json: str

    def output(self, node: str) -> Any:
        assert self.result is not None, f"execution failed: {self.error}"
        return self.result[node]


def node(
    node_id: str,
    component: str,
    config: dict[str, Any],
    connection_id: str | None = None,
    *,
    attempts: int = 3,
    interval: str = "1s",
    start_to_close: str = "20s",
) -> dict[str, Any]:
    return {
        "id": node_id,
        "component": component,
        "config": config,
        "connection_id": connection_id,
        "timeouts": {"start_to_close": start_to_close},
        "retry_policy": {
            "strategy": "fail_after_attempts",
            "max_attempts": attempts,
            "interval": interval,
        },
    }


Runner = Callable[..., Outcome]


@pytest.fixture
def run_nodes(
    endpoints: Endpoints,
    db: Database,
    component_keyring: Keyring,
    sandbox: DenoSandbox,
    world: World,
) -> Runner:
    """Run a definition made of ``nodes`` (and ``edges``) in the world's project on a fresh
    builder worker; ``during`` is awaited while the execution runs."""

    def run(
        nodes: list[dict[str, Any]],
        edges: list[dict[str, str]] | None = None,
        workflow_input: Any = None,
        *,
        project_id: uuid.UUID | None = None,
        during: Callable[[WorkflowHandle[Any, Any]], Awaitable[None]] | None = None,
        policy: NetworkPolicy = LOCAL,
    ) -> Outcome:
        definition = WorkflowDefinition.model_validate(
            {
                "id": f"wf-{uuid.uuid4().hex[:8]}",
                "name": "components",
                "nodes": nodes,
                "edges": edges or [],
            }
        )

        async def main() -> Outcome:
            client = await Client.connect(endpoints.temporal_address)
            registry = builtin_registry()
            components = register_components(
                registry,
                ConnectionResolver(db, component_keyring),
                policy=policy,
                sandbox=sandbox,
            )
            queue = f"components-{uuid.uuid4().hex[:8]}"
            worker = build_worker(client, task_queue=queue, registry=registry)
            try:
                async with worker:
                    handle = await start_builder_run(
                        client,
                        definition,
                        workflow_input,
                        task_queue=queue,
                        context=RunContext(project_id=str(project_id or world.owner.project.id)),
                    )
                    if during is not None:
                        await during(handle)
                    result: dict[str, Any] | None = None
                    error: ApplicationError | None = None
                    try:
                        result = (await handle.result()).outputs
                    except WorkflowFailureError as exc:
                        error = _root_application_error(exc)
                    history = await handle.fetch_history()
            finally:
                await components.aclose()
            node_of: dict[int, str] = {}
            attempts: dict[str, int] = {}
            for event in history.events:
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    node_of[event.event_id] = (
                        event.activity_task_scheduled_event_attributes.activity_id
                    )
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    started = event.activity_task_started_event_attributes
                    attempts[node_of[started.scheduled_event_id]] = started.attempt
            return Outcome(result, error, attempts, json.dumps(history.to_json_dict()))

        return asyncio.run(main())

    return run


def _root_application_error(exc: BaseException) -> ApplicationError | None:
    """The component's own ApplicationError under NodeFailed -> ActivityError."""
    current: BaseException | None = exc
    found: ApplicationError | None = None
    while current is not None:
        if isinstance(current, ApplicationError) and not isinstance(current, ActivityError):
            found = current
        current = getattr(current, "cause", None) or current.__cause__
    return found
