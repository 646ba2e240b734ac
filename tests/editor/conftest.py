"""Editing workflows, over real services: the app served by uvicorn, a builder and a sync
worker on the session's Temporal dev server, PostgreSQL under RLS, real tokens.

One module-scoped world for the API and the browser tests of this directory (kept small:
two people, a public workflow, connections in two projects). Runs started by the API go
to this harness's own builder queue (``app.state.builder_task_queue``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from tests.api.conftest import JWT_SECRET, Http, SyncHarness
from tests.api.seed import Person, make_person
from wfmon.api.app import RunningServer, create_app, start_server
from wfmon.connections import Keyring, NetworkPolicy, generate_key
from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.settings import Settings
from wfmon.testing import make_owner

FAST = {"strategy": "fail_after_attempts", "max_attempts": 2, "interval": "100ms"}

#: Alice's workflow: fetch -> shape, both quick and deterministic.
ALICE_FLOW: dict[str, Any] = {
    "id": "editor-orders",
    "name": "editor orders",
    "nodes": [
        {"id": "fetch", "component": "transform", "config": {"set": {"rows": 3}}},
        {
            "id": "shape",
            "component": "transform",
            "config": {"pick": {"rows": "upstream.fetch.rows"}},
            "retry_policy": FAST,
        },
    ],
    "edges": [{"source": "fetch", "target": "shape"}],
}


@dataclass
class EditorWorld:
    harness: SyncHarness
    db: Database
    server: RunningServer
    alice: Person
    bob: Person
    #: Bob's public workflow: Alice may read it, not edit or run it.
    bobs_public: UUID
    #: connection name -> id; "pg" and "cache" are Alice's, "bob-pg" is Bob's.
    connections: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, who: Person | None = None) -> Http:
        return Http(self.server.url, who.token if who else None)


@pytest.fixture(scope="session")
def editor_world(endpoints: Endpoints, database_url: str) -> Iterator[EditorWorld]:
    db = Database(database_url, max_size=8)
    db.open()
    harness = SyncHarness(endpoints.temporal_address, db, database_url).start()
    settings = Settings(
        jwt_secret=SecretStr(JWT_SECRET), temporal_address=endpoints.temporal_address
    )
    app = create_app(
        settings,
        db=db,
        temporal_address=endpoints.temporal_address,
        keyring=Keyring.parse(generate_key("k1")),
        policy=NetworkPolicy.permissive_local(),
        sync_timeout=10,
    )
    app.state.builder_task_queue = harness.builder_queue
    server = start_server(app)
    try:
        alice = make_person(db, "ed-alice", JWT_SECRET, ALICE_FLOW)
        bob = make_person(db, "ed-bob", JWT_SECRET, ALICE_FLOW)
        public = make_owner(
            db, "ed-bob-public", definition=ALICE_FLOW, visibility="public"
        ).workflow.id
        # The public workflow belongs to another user: give Bob's token to nobody else.
        world = EditorWorld(harness, db, server, alice, bob, public, {})
        for who, name, ctype, url in (
            (alice, "pg", "postgresql", "postgresql://shop:secret-pw@127.0.0.1:5/shop"),
            (alice, "cache", "redis", "redis://:secret-pw@127.0.0.1:6/0"),
            (bob, "bob-pg", "postgresql", "postgresql://bob:bob-pw@127.0.0.1:7/bob"),
        ):
            reply = world.http(who).post(
                f"/api/projects/{who.project.id}/connections",
                {"name": name, "connection_type": ctype, "url": url},
            )
            assert reply.status == 201, reply.text
            world.connections[name] = reply.json()["id"]
        yield world
    finally:
        server.stop()
        harness.stop()
        db.close()
