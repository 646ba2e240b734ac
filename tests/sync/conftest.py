"""Sync tests: a builder worker and the sync worker on a background event loop.

The sync worker polls the real ``wfmon-sync`` queue (one coordinator per namespace), the
builder worker a queue of its own. Tests hand coroutines to :meth:`SyncHarness.run`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.testing import BuilderAndSyncHarness, WorkflowOwner, make_owner


class SyncHarness(BuilderAndSyncHarness):
    """Builder and sync workers for the sync tests."""


@pytest.fixture(scope="session")
def sync_harness(endpoints: Endpoints, db: Database) -> Iterator[SyncHarness]:
    harness = SyncHarness(endpoints.temporal_address, db).start()
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture(scope="session")
def alice(db: Database) -> WorkflowOwner:
    return make_owner(db, "alice")


@pytest.fixture(scope="session")
def bob(db: Database) -> WorkflowOwner:
    return make_owner(db, "bob")
