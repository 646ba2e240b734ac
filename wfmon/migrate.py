"""Apply the SQL migrations in ``migrations/`` (``wfmon migrate``).

yoyo-migrations does the bookkeeping: it reads the plain ``.sql`` files in name order, runs
each file in one transaction and records it in ``_yoyo_migration``, so a second run applies
nothing. Around the whole run we hold a PostgreSQL advisory lock on a separate connection:
yoyo's own lock lives in a table that it creates on connect, and two processes creating
that table at once can fail; the advisory lock makes concurrent runs wait for each other.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from yoyo import get_backend, read_migrations

from wfmon.db.locks import advisory_lock, libpq_url

__all__ = ["MIGRATIONS_DIR", "MigrationError", "apply_migrations", "libpq_url", "yoyo_url"]

#: Where the ordered ``NNNN_name.sql`` files live (the repository's top-level migrations/).
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: Arbitrary, fixed key of the advisory lock that serialises migration runs per database.
ADVISORY_LOCK_KEY = 0x77666D6F6E  # "wfmon"


class MigrationError(RuntimeError):
    """A migration could not be applied; the message names the migration and the cause."""


def yoyo_url(database_url: str) -> str:
    """The same URL with the scheme yoyo needs for its psycopg 3 backend."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise MigrationError(
            f"database URL must start with postgresql:// (got {parts.scheme or 'no'} scheme)"
        )
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def apply_migrations(database_url: str, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet recorded in the database; return their ids in order.

    Guarantees: migrations run in file-name order, each in its own transaction (a failing
    file leaves no trace and stops the run), and concurrent callers against the same
    database are serialised, so each migration is applied exactly once.
    """
    if not migrations_dir.is_dir():
        raise MigrationError(f"migrations directory {migrations_dir} does not exist")
    migrations = read_migrations(str(migrations_dir))
    try:
        with advisory_lock(database_url, ADVISORY_LOCK_KEY):
            backend = get_backend(yoyo_url(database_url))
            try:
                with backend.lock():
                    pending = backend.to_apply(migrations)
                    backend.apply_migrations(pending)
                    return [m.id for m in pending]
            finally:
                backend.connection.close()
    except psycopg.OperationalError as exc:
        raise MigrationError(f"cannot migrate the database: {exc}") from exc
    except psycopg.Error as exc:
        # yoyo has rolled the failing migration back; its id is in the log, the cause here.
        raise MigrationError(f"migration failed: {exc}") from exc
