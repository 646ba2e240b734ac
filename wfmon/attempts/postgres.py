"""The attempt sink for wfmon's PostgreSQL, logging in with a DSN of its own.

Writes run in one transaction per batch as ``wfmon_attempt_writer`` (migrations/0550),
a role that may insert attempt rows and do nothing else, through
:func:`wfmon.db.attempts.write_finished_attempts`. psycopg is synchronous: writes run in
a thread, so the worker's event loop, and with it every activity, never waits on the
database. The connection is opened on the first write and reopened after any error.

Secrets: the DSN is never logged or put in an exception message. Errors reach the
recorder (which logs them) as :class:`AttemptSinkError`, whose message has the DSN's
password and the DSN itself replaced by ``***``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from wfmon.attempts.records import AttemptRecord, to_row
from wfmon.db.attempts import login_reach_beyond_attempts, write_finished_attempts
from wfmon.db.database import DbConnection
from wfmon.db.locks import libpq_url
from wfmon.db.rows import AttemptRow

logger = logging.getLogger("wfmon.attempts")


class AttemptSinkError(RuntimeError):
    """A write to the attempt database failed; the message carries no secret."""


class PostgresAttemptSink:
    """:class:`~wfmon.attempts.AttemptSink` writing to wfmon's PostgreSQL at ``dsn``.

    ``dsn`` is checked when the sink is made (``ValueError`` naming the problem, without
    the DSN); the database is first contacted by the first write.
    """

    def __init__(self, dsn: str, *, connect_timeout: int = 5) -> None:
        self._dsn = libpq_url(dsn) if "://" in dsn else dsn
        try:
            params = conninfo_to_dict(self._dsn)
        except psycopg.Error:
            # psycopg's message may quote parts of the DSN: say what is wrong, not what it was.
            raise ValueError(
                "wfmon.attempts: dsn is not a PostgreSQL connection string; expected "
                "postgresql://wfmon_recorder:PASSWORD@HOST:PORT/DATABASE"
            ) from None
        self._secrets = [s for s in (str(params.get("password") or ""), dsn, self._dsn) if s]
        self.connect_timeout = max(1, connect_timeout)
        self._conn: DbConnection | None = None
        self._lock = threading.Lock()
        self._login_checked = False

    async def write(self, records: Sequence[AttemptRecord]) -> None:
        rows = [to_row(r) for r in records]
        await asyncio.to_thread(self._write, rows)

    def _write(self, rows: list[AttemptRow]) -> None:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(
                        self._dsn, connect_timeout=self.connect_timeout, row_factory=dict_row
                    )
                    if not self._login_checked:
                        self._login_checked = True
                        self._warn_if_overpowered(self._conn)
                write_finished_attempts(self._conn, rows)
            except Exception as exc:
                self._drop_connection()
                raise AttemptSinkError(self._redact(f"{type(exc).__name__}: {exc}")) from None

    @staticmethod
    def _warn_if_overpowered(conn: DbConnection) -> None:
        """Say once if the DSN's role can do more than insert attempts (it still writes:
        recording never stops over this, but a worker should hold no more than that)."""
        role, problems = login_reach_beyond_attempts(conn)
        if problems:
            logger.warning(
                "wfmon.attempts: database login role %r %s: a Temporal worker needs only "
                "the wfmon_recorder login, which may insert attempt rows and nothing else "
                "(docs/user-guide/own-workers.md)",
                role,
                "; ".join(problems),
            )

    def _redact(self, message: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        return message.strip().splitlines()[0] if message.strip() else "unknown error"

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to release
                conn.close()

    def close(self) -> None:
        """Close the connection (the sink reconnects if written to again)."""
        with self._lock:
            self._drop_connection()

    def __repr__(self) -> str:  # never the DSN
        return f"{type(self).__name__}(dsn=***)"
