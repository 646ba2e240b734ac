"""The production attempt sink: ``component_execution_attempts`` in PostgreSQL.

Writes run as the system role in one transaction per batch (``insert_attempts`` upserts
on (namespace, workflow id, run id, activity id, attempt), so a batch offered again after
a failed commit never duplicates rows). psycopg is synchronous: writes run in a thread so
the worker's event loop, and with it every activity, never waits on the database.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from wfmon.db import Database
from wfmon.db.executions import insert_attempts
from wfmon.db.rows import AttemptRow
from wfmon.runtime.attempts import AttemptRecord


class PostgresAttemptSink:
    """:class:`~wfmon.runtime.attempts.AttemptSink` over a :class:`wfmon.db.Database`.

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


def to_row(record: AttemptRecord) -> AttemptRow:
    """The ``component_execution_attempts`` row of one attempt record."""
    return AttemptRow(
        temporal_namespace=record.namespace,
        temporal_workflow_id=record.workflow_id,
        temporal_run_id=record.run_id,
        activity_id=record.activity_id,
        attempt=record.attempt,
        started_at=record.started_at,
        activity_type=record.activity_type,
        ended_at=record.ended_at,
        outcome=record.outcome.value,
        failure_type=record.failure_type,
        failure_message=record.failure_message,
        failure_stack=record.failure_stack,
        worker_identity=record.worker_identity,
    )
