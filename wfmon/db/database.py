"""The connection pool and the units of work every query runs in.

A unit of work is one transaction under ``SET LOCAL ROLE``: ``wfmon_user`` with the caller's
auth id in ``request.jwt.claim.sub`` (what ``auth.uid()`` reads), or ``wfmon_system`` for
sync. Both settings are transaction-local, so a pooled connection never carries one
caller's identity into the next unit of work. The pool's login role owns nothing and can
do nothing but switch role (migrations/0300); :meth:`Database.open` refuses a login role
that could bypass row-level security (:mod:`wfmon.db.login`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Final
from uuid import UUID

from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from wfmon.db.locks import libpq_url
from wfmon.db.login import LoginRole, check_login_role

USER_ROLE: Final = "wfmon_user"
SYSTEM_ROLE: Final = "wfmon_system"

DbConnection = Connection[DictRow]


class Database:
    """A pool of connections to the wfmon database. Use as a context manager or open/close."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        #: The login role, known once :meth:`open` has checked it.
        self.login: LoginRole | None = None
        self._pool: ConnectionPool[DbConnection] = ConnectionPool(
            libpq_url(url),
            min_size=min_size,
            max_size=max_size,
            open=False,
            connection_class=Connection[DictRow],
            kwargs={"row_factory": dict_row},
        )

    def open(self, timeout: float = 30.0) -> None:
        """Open the pool and wait until its first connections are ready.

        Raises :class:`~wfmon.db.login.UnsafeLoginRole` (and closes the pool) when the
        login role owns wfmon's tables, has BYPASSRLS or could become a role that does.
        """
        self._pool.open(wait=True, timeout=timeout)
        try:
            with self._pool.connection() as conn:
                self.login = check_login_role(conn)
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Database:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- units of work -----------------------------------------------------------------

    @contextmanager
    def as_user(self, auth_user_id: UUID) -> Iterator[DbConnection]:
        """One transaction as the end user whose ``auth.uid()`` is ``auth_user_id``.

        Commits when the block ends normally, rolls back when it raises.
        """
        with self._unit_of_work(USER_ROLE, str(auth_user_id)) as conn:
            yield conn

    @contextmanager
    def as_anonymous(self) -> Iterator[DbConnection]:
        """One transaction as an end user with no identity (``auth.uid()`` is NULL)."""
        with self._unit_of_work(USER_ROLE, None) as conn:
            yield conn

    @contextmanager
    def as_system(self) -> Iterator[DbConnection]:
        """One transaction as the system role (sync, statistics). Not tied to any user."""
        with self._unit_of_work(SYSTEM_ROLE, None) as conn:
            yield conn

    @contextmanager
    def _unit_of_work(self, role: str, claim_sub: str | None) -> Iterator[DbConnection]:
        with self._pool.connection() as conn, conn.transaction():
            # One round trip: set_config('role', ..., true) is SET LOCAL ROLE (same
            # permission check), and is_local = true makes the claim vanish at commit or
            # rollback together with the role switch. The search path puts temporary tables
            # last, whatever an earlier unit of work on this connection left behind.
            conn.execute(
                "SELECT set_config('role', %s, true), "
                "set_config('request.jwt.claim.sub', %s, true), "
                "set_config('search_path', 'public, pg_temp', true)",
                (role, claim_sub or ""),
            )
            yield conn
