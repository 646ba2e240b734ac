"""Fixtures for project-connection tests: two users with a project each, a keyring, and
URLs of the session's real PostgreSQL and Redis to store as connections."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest

from wfmon.connections import Keyring, NetworkPolicy, generate_key
from wfmon.db import Database
from wfmon.db.accounts import create_project, create_user
from wfmon.dev.services import Endpoints


@dataclass(frozen=True)
class Owner:
    auth_id: UUID
    user_id: UUID
    project_id: UUID


def make_owner(db: Database, label: str) -> Owner:
    auth = uuid4()
    with db.as_system() as conn:
        user = create_user(conn, auth_user_id=auth, email=f"{label}-{auth.hex[:8]}@test")
    with db.as_user(auth) as conn:
        project = create_project(conn, name=f"{label}-project-{auth.hex[:8]}", created_by=user.id)
    return Owner(auth_id=auth, user_id=user.id, project_id=project.id)


@pytest.fixture
def alice(db: Database) -> Owner:
    return make_owner(db, "alice")


@pytest.fixture
def bob(db: Database) -> Owner:
    return make_owner(db, "bob")


@pytest.fixture(scope="session")
def keyring() -> Keyring:
    return Keyring.parse(generate_key("k1"))


@pytest.fixture(scope="session")
def local_policy() -> NetworkPolicy:
    """Tests reach the embedded services on 127.0.0.1: loopback must be allowed."""
    return NetworkPolicy(allow_loopback=True)


@pytest.fixture(scope="session")
def pg_url(endpoints: Endpoints) -> str:
    """A real PostgreSQL URL with a password (the session's app role)."""
    return endpoints.database_url


@pytest.fixture(scope="session")
def redis_url(endpoints: Endpoints) -> str:
    return endpoints.redis_url
