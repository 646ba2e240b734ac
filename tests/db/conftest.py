"""Fixtures for the database tests: fresh databases, and a small world of two users' data.

Every test module gets its own freshly migrated database, so row counts are exact and no
other test's rows show up. Creating a database needs the embedded superuser (the app role
``wfmon`` has no CREATEDB); it is used for that only, never to check row-level security.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from wfmon import testing
from wfmon.db import Database, DbConnection
from wfmon.db.accounts import create_project, create_user, create_workflow
from wfmon.db.rows import (
    DISCOVERED_PROJECT_ID,
    SYSTEM_USER_ID,
    ComponentExecutionRow,
    ExecutionRow,
)
from wfmon.dev.postgres import PostgresInstance
from wfmon.dev.services import EmbeddedServices, Endpoints
from wfmon.migrate import apply_migrations
from wfmon.model import ComponentStatus

Actor = Literal["A", "B", "system", "anon"]
ACTORS: tuple[Actor, ...] = ("A", "B", "system", "anon")

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


# -- fresh databases ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def admin_url(embedded_services: EmbeddedServices, endpoints: Endpoints) -> str:
    """Superuser URL of the session's cluster (to create and drop databases only)."""
    port = urlsplit(endpoints.database_url).port
    assert port is not None
    return PostgresInstance(embedded_services.state_dir / "postgres", port).url("postgres")


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def new_database(admin_url: str, endpoints: Endpoints) -> Iterator[Callable[[], str]]:
    """Factory: an empty database owned by ``wfmon``; returns the owner's URL (migrations)."""
    created: list[str] = []

    def make() -> str:
        name = f"wfmon_test_{secrets.token_hex(4)}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER wfmon").format(sql.Identifier(name)))
        created.append(name)
        return _with_database(endpoints.migrations_url, name)

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def fresh_url(new_database: Callable[[], str], endpoints: Endpoints) -> str:
    """The authenticator's URL of a freshly migrated database of this module's own."""
    owner_url = new_database()
    apply_migrations(owner_url)
    return _with_database(endpoints.database_url, urlsplit(owner_url).path.lstrip("/"))


@pytest.fixture(scope="module")
def fresh_db(fresh_url: str) -> Iterator[Database]:
    with Database(fresh_url, max_size=4) as database:
        yield database


# -- the world: two users' projects, workflows, executions ------------------------------


@dataclass
class World:
    """Ids of the rows every RLS test starts from. ``names`` maps ids back to labels."""

    auth: dict[str, UUID] = field(default_factory=dict)  # actor -> auth.uid()
    ids: dict[str, UUID] = field(default_factory=dict)  # label -> row id
    names: dict[str, str] = field(default_factory=dict)  # str(row id) -> label

    def add(self, label: str, row_id: UUID) -> UUID:
        self.ids[label] = row_id
        self.names[str(row_id)] = label
        return row_id

    def label(self, value: object) -> str:
        return self.names.get(str(value), str(value))

    # Which rows an actor "owns", for inserts in the matrix (anon pretends to be A).
    def user_id(self, actor: Actor) -> UUID:
        return self.ids["system" if actor == "system" else ("B" if actor == "B" else "A")]

    def project(self, actor: Actor) -> UUID:
        return self.ids[{"A": "pa", "B": "pb", "system": "disc", "anon": "pa"}[actor]]

    def workflow(self, actor: Actor) -> UUID:
        return self.ids["wb" if actor == "B" else "wa"]

    def execution(self, actor: Actor) -> str:
        """Temporal workflow id (= label) of an execution the actor owns."""
        return {"A": "ea", "B": "eb", "system": "es", "anon": "ea"}[actor]


def unit_of_work(db: Database, world: World, actor: Actor) -> AbstractContextManager[DbConnection]:
    """The unit of work ``actor`` runs in: a user, the system, or nobody."""
    if actor == "system":
        return db.as_system()
    if actor == "anon":
        return db.as_anonymous()
    return db.as_user(world.auth[actor])


def execution_row(label: str, **overrides: Any) -> ExecutionRow:
    """A completed execution (started and closed at T0, task queue ``tq``) whose Temporal
    workflow id is ``label``: :func:`wfmon.testing.execution_row` without an owner (the
    system's, in the Discovered project) unless ``overrides`` say whose."""
    values: dict[str, Any] = {
        "started_at": T0,
        "closed_at": T0,
        "workflow_type": "BuilderWorkflow",
        "task_queue": "tq",
        **overrides,
    }
    return testing.execution_row(None, label, **values)


def build_world(db: Database, admin_url: str) -> World:
    """Users A and B with a project each, workflows (one public), components (one public),
    connections, one execution each plus a system one, with component rows, attempts and
    statistics. ``admin_url`` (superuser, this database) only adds a built-in component:
    migrations seed those, and no role that RLS applies to may create one.
    """
    w = World()
    with psycopg.connect(admin_url) as admin:
        admin.execute(
            """
            INSERT INTO components (name, created_by, visibility_id)
            SELECT 'builtin-test', %s, id FROM component_visibility WHERE name = 'public'
            ON CONFLICT (created_by, name) DO NOTHING
            """,
            (SYSTEM_USER_ID,),
        )
    w.add("system", SYSTEM_USER_ID)
    w.add("disc", DISCOVERED_PROJECT_ID)
    with db.as_system() as conn:
        for actor in ("A", "B"):
            w.auth[actor] = uuid4()
            user = create_user(
                conn, auth_user_id=w.auth[actor], email=f"{actor.lower()}@test", display_name=actor
            )
            w.add(actor, user.id)
        conn.execute("INSERT INTO task_queues (name) VALUES ('tq')")

    def own(
        actor: Actor, project: str, workflows: dict[str, str], component: tuple[str, str]
    ) -> None:
        with db.as_user(w.auth[actor]) as conn:
            me = w.ids[actor]
            p = w.add(project, create_project(conn, name=project, created_by=me).id)
            for name, visibility in workflows.items():
                wf = create_workflow(
                    conn,
                    project_id=p,
                    created_by=me,
                    name=name,
                    definition={"label": name},
                    visibility=visibility,  # type: ignore[arg-type]
                )
                w.add(name, wf.id)
            conn.execute(
                """
                INSERT INTO components (name, created_by, visibility_id)
                SELECT %s, %s, id FROM component_visibility WHERE name = %s
                """,
                (component[0], me, component[1]),
            )
            conn.execute(
                """
                INSERT INTO project_connections (project_id, connection_type, name,
                    connection_url_encrypted, encryption_key_id, masked_url, created_by)
                VALUES (%s, 'postgresql', %s, '\\x00', 'k1', 'postgresql://***@h/db', %s)
                """,
                (p, f"conn_{actor.lower()}", me),
            )

    own("A", "pa", {"wa": "private", "wa_pub": "public"}, ("ca", "private"))
    own("B", "pb", {"wb": "private"}, ("cb_pub", "public"))

    executions = {
        "ea": execution_row(
            "ea", created_by=w.ids["A"], project_id=w.ids["pa"], workflow_id=w.ids["wa_pub"],
            workflow_version=1,
        ),
        "eb": execution_row(
            "eb", created_by=w.ids["B"], project_id=w.ids["pb"], workflow_id=w.ids["wb"],
            workflow_version=1,
        ),
        "es": execution_row("es"),
    }  # fmt: skip
    for label, row in executions.items():
        # Written by the sync's writers; the history sync is never recorded (pending).
        w.add(
            f"exec_{label}",
            testing.write_execution(
                db,
                row,
                components=[
                    ComponentExecutionRow(
                        node_id=label, scheduled_event_id=5, status=ComponentStatus.COMPLETED
                    )
                ],
                attempts=[testing.attempt_row(row, label, 1, T0, outcome="completed", ended_at=T0)],
                synced=False,
            ),
        )
    with db.as_system() as conn:
        for wf in ("wa", "wa_pub", "wb"):
            conn.execute(
                "INSERT INTO workflow_statistics (workflow_id, total_runs) VALUES (%s, 1)",
                (w.ids[wf],),
            )
        for p in ("pa", "pb", "disc"):
            conn.execute(
                "INSERT INTO project_statistics (project_id, total_executions) VALUES (%s, 1)",
                (w.ids[p],),
            )
        for wf in ("wa", "wa_pub", "wb"):
            conn.execute(
                "INSERT INTO workflow_daily_trends (workflow_id, day, project_id, runs,"
                " successful_runs, failed_runs)"
                " SELECT id, DATE '2026-01-01', project_id, 1, 1, 0 FROM workflows WHERE id = %s",
                (w.ids[wf],),
            )
            conn.execute(
                "INSERT INTO component_daily_trends (workflow_id, day, component_name,"
                " project_id, runs, failures, retries, expected_retries)"
                " SELECT id, DATE '2026-01-01', 'transform', project_id, 1, 0, 0, 0"
                " FROM workflows WHERE id = %s",
                (w.ids[wf],),
            )
    return w


@pytest.fixture(scope="module")
def world(fresh_db: Database, fresh_url: str, admin_url: str) -> World:
    return build_world(fresh_db, _with_database(admin_url, urlsplit(fresh_url).path[1:]))
