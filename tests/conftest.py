"""Session fixtures: the real embedded services, on their own free ports and state dir.

Tests never touch a developer's running services: everything lives in a fresh temporary
state directory and is stopped by PID at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from wfmon.dev.services import EmbeddedServices, Endpoints


def make_state_dir(prefix: str = "wfmon-test-") -> Path:
    """A fresh directory that the unprivileged PostgreSQL user can reach."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def embedded_services() -> Iterator[EmbeddedServices]:
    state = make_state_dir()
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        services.up()
        yield services
    finally:
        services.down()
        if not os.environ.get("WFMON_KEEP_TEST_STATE"):
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def endpoints(embedded_services: EmbeddedServices) -> Endpoints:
    """URLs of the session's PostgreSQL (login roles), Temporal and Redis."""
    return embedded_services.endpoints()


# -- database (appended: wfmon/db, migrations) --------------------------------------------

from wfmon.db import Database  # noqa: E402
from wfmon.migrate import apply_migrations  # noqa: E402


@pytest.fixture(scope="session")
def database_url(endpoints: Endpoints) -> str:
    """The session database with every migration applied; the authenticator's URL."""
    apply_migrations(endpoints.migrations_url)
    return endpoints.database_url


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    """A ``wfmon.db.Database`` over the migrated session database (RLS applies to it)."""
    with Database(database_url) as database:
        yield database


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Debian Chromium per test module (tests/browser.py says why not per session)."""
    from tests.browser import launch_chromium

    with launch_chromium() as chromium:
        yield chromium
