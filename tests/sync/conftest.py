"""Sync tests: a builder worker and the sync worker on a background event loop.

The sync worker polls the real ``wfmon-sync`` queue (one coordinator per namespace), the
builder worker a queue of its own. Tests hand coroutines to :meth:`SyncHarness.run`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from wfmon.db import Database
from wfmon.db.accounts import create_project, create_user, create_workflow
from wfmon.db.rows import Project, User, Workflow
from wfmon.dev.services import Endpoints
from wfmon.testing import BuilderAndSyncHarness


class SyncHarness(BuilderAndSyncHarness):
    """Builder and sync workers for the sync tests."""


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
