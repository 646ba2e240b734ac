"""The builder worker's attempt sink: ``component_execution_attempts`` through its pool.

wfmon's own worker already holds a :class:`wfmon.db.Database` (the authenticator login),
so its attempts are written through that pool as the system role, with the upsert of
:func:`wfmon.db.executions.insert_attempts` (one transaction per batch; a batch offered
again never duplicates rows). Records, rows, interceptor and recorder are those of
:mod:`wfmon.attempts`; workers wfmon does not run use
:class:`wfmon.attempts.PostgresAttemptSink` with a DSN that may only insert attempt rows.
psycopg is synchronous: writes run in a thread, so no activity waits on the database.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from wfmon.attempts import AttemptRecord, to_row
from wfmon.db import Database
from wfmon.db.executions import insert_attempts
from wfmon.db.rows import AttemptRow

__all__ = ["PostgresAttemptSink", "to_row"]


class PostgresAttemptSink:
    """:class:`~wfmon.attempts.AttemptSink` over a :class:`wfmon.db.Database`.

    The pool is opened on the first write, not at construction, so a worker starts (and
    its activities run) while the database is still down; the recorder keeps the records
    and retries until a write succeeds.
    """

    def __init__(self, database: Database, *, open_timeout: float = 5.0) -> None:
        self.database = database
        self.open_timeout = open_timeout
        self._opened = False
        self._lock = threading.Lock()

    async def write(self, records: Sequence[AttemptRecord]) -> None:
        await asyncio.to_thread(self._write, [to_row(r) for r in records])

    def _write(self, rows: list[AttemptRow]) -> None:
        with self._lock:
            if not self._opened:
                self.database.open(timeout=self.open_timeout)
                self._opened = True
        with self.database.as_system() as conn:
            insert_attempts(conn, rows)

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self.database.close()
                self._opened = False
