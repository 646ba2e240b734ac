"""Session-level advisory locks, and the plain libpq form of a database URL.

Used by ``wfmon migrate`` to serialise migration runs; lives here because every SQL
statement wfmon runs on its own database lives in ``wfmon.db``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg


def libpq_url(database_url: str) -> str:
    """The same URL as plain ``postgresql://`` for psycopg."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(scheme="postgresql"))


@contextmanager
def advisory_lock(database_url: str, key: int) -> Iterator[None]:
    """Hold a session-level advisory lock on ``key`` while the block runs.

    Blocks until the lock is free. The lock lives on its own autocommit connection, so it
    is independent of the transactions the block runs, and is released when that
    connection closes even if the process dies.
    """
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
