"""Fixtures for project-connection tests: two users with a project each, a keyring, and
URLs of the session's real PostgreSQL and Redis to store as connections."""

from __future__ import annotations

import pytest

from wfmon.connections import Keyring, NetworkPolicy, generate_key
from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.testing import WorkflowOwner, make_owner


@pytest.fixture
def alice(db: Database) -> WorkflowOwner:
    return make_owner(db, "alice")


@pytest.fixture
def bob(db: Database) -> WorkflowOwner:
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
