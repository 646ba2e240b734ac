"""The wfmon database as a Dagster resource: a thin wrapper over :class:`wfmon.db.Database`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import dagster as dg
from pydantic import Field, PrivateAttr

from wfmon.db import Database
from wfmon.db.database import DbConnection
from wfmon.settings import load_settings, resolve_endpoints


class WfmonDatabaseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """wfmon's PostgreSQL, used only through units of work (``as_system`` / ``as_user``).

    Row-level security applies: the login role sees nothing by itself, so every query runs
    in a transaction as ``wfmon_system`` or as one end user. ``url`` unset means
    ``WFMON_DATABASE_URL`` or the embedded server (resolved when first used, not at import).
    The pool opens on first use and closes when the step, sensor tick or schedule tick ends.
    """

    url: str | None = Field(default=None, description="postgresql:// URL of the wfmon database.")
    max_connections: int = Field(default=4, description="Pool size per process.")

    _db: Database | None = PrivateAttr(default=None)

    def resolved_url(self) -> str:
        """The URL this resource connects to (it may carry a password: never log it)."""
        return self.url or resolve_endpoints(load_settings()).database_url

    def database(self) -> Database:
        """The open pool (opened on first call)."""
        if self._db is None:
            db = Database(self.resolved_url(), min_size=1, max_size=self.max_connections)
            db.open()
            self._db = db
        return self._db

    @contextmanager
    def as_system(self) -> Iterator[DbConnection]:
        """One transaction as ``wfmon_system`` (commits on success, rolls back on error)."""
        with self.database().as_system() as conn:
            yield conn

    @contextmanager
    def as_user(self, auth_user_id: UUID) -> Iterator[DbConnection]:
        """One transaction as the end user whose ``auth.uid()`` is ``auth_user_id``."""
        with self.database().as_user(auth_user_id) as conn:
            yield conn

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
