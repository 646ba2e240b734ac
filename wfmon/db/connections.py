"""Project connections as stored: ciphertext, key id and masked URL, never the plain URL.

Run in the caller's unit of work (``Database.as_user``): row-level security decides what
exists, so another user's connection is simply not found. Validation, encryption and the
errors users see live in :mod:`wfmon.connections.service`, which calls these.
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from wfmon.db.database import DbConnection

Row = dict[str, Any]

#: What a connection is to its users (no ciphertext).
_COLUMNS: Final = sql.SQL(
    "id, project_id, name, connection_type, masked_url, config, created_by, created_at, updated_at"
)


def insert_project_connection(
    conn: DbConnection,
    *,
    project_id: UUID,
    connection_type: str,
    name: str,
    url_encrypted: bytes,
    encryption_key_id: str,
    masked_url: str,
    config: dict[str, Any],
) -> Row | None:
    """Insert a connection created by the caller; return it (without the ciphertext).

    Raises psycopg's ``UniqueViolation`` for a name the project already has, and
    ``InsufficientPrivilege`` / ``ForeignKeyViolation`` / ``NotNullViolation`` when the
    project is not the caller's or does not exist.
    """
    return conn.execute(
        sql.SQL(
            """
            INSERT INTO project_connections (project_id, connection_type, name,
                connection_url_encrypted, encryption_key_id, masked_url, config, created_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s, (SELECT wfmon_current_user_id()))
            RETURNING {}
            """
        ).format(_COLUMNS),
        (
            project_id,
            connection_type,
            name,
            url_encrypted,
            encryption_key_id,
            masked_url,
            Jsonb(config),
        ),
    ).fetchone()


def list_project_connections(conn: DbConnection, project_id: UUID) -> list[Row]:
    """The project's connections visible to the caller, by name."""
    return conn.execute(
        sql.SQL("SELECT {} FROM project_connections WHERE project_id = %s ORDER BY name").format(
            _COLUMNS
        ),
        (project_id,),
    ).fetchall()


def get_project_connection(conn: DbConnection, connection_id: UUID) -> Row | None:
    """One connection (without the ciphertext), or None when missing or not visible."""
    return conn.execute(
        sql.SQL("SELECT {} FROM project_connections WHERE id = %s").format(_COLUMNS),
        (connection_id,),
    ).fetchone()


def get_project_connection_secret(conn: DbConnection, connection_id: UUID) -> Row | None:
    """One connection with ``connection_url_encrypted`` and ``encryption_key_id``, or None."""
    return conn.execute(
        sql.SQL(
            "SELECT {}, connection_url_encrypted, encryption_key_id "
            "FROM project_connections WHERE id = %s"
        ).format(_COLUMNS),
        (connection_id,),
    ).fetchone()


def update_project_connection(
    conn: DbConnection,
    connection_id: UUID,
    *,
    name: str | None = None,
    url_encrypted: bytes | None = None,
    encryption_key_id: str | None = None,
    masked_url: str | None = None,
    config: dict[str, Any] | None = None,
) -> Row | None:
    """Set the given fields (None: unchanged; the URL's three columns go together) and
    ``updated_at``; return the row, or None when missing or not the caller's.

    Raises ``UniqueViolation`` for a name the project already has and
    ``InsufficientPrivilege`` when a policy refuses the write.
    """
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = name
    if url_encrypted is not None:
        if encryption_key_id is None or masked_url is None:
            raise ValueError("a new URL needs its ciphertext, key id and masked form")
        values["connection_url_encrypted"] = url_encrypted
        values["encryption_key_id"] = encryption_key_id
        values["masked_url"] = masked_url
    if config is not None:
        values["config"] = Jsonb(config)
    sets = sql.SQL(", ").join(
        [sql.SQL("updated_at = now()")]
        + [sql.SQL("{} = %s").format(sql.Identifier(column)) for column in values]
    )
    return conn.execute(
        sql.SQL("UPDATE project_connections SET {} WHERE id = %s RETURNING {}").format(
            sets, _COLUMNS
        ),
        (*values.values(), connection_id),
    ).fetchone()


def delete_project_connection(conn: DbConnection, connection_id: UUID) -> bool:
    """Delete one connection; False when missing or not the caller's."""
    row = conn.execute(
        "DELETE FROM project_connections WHERE id = %s RETURNING id", (connection_id,)
    ).fetchone()
    return row is not None


def lock_connections_not_under_key(conn: DbConnection, key_id: str) -> list[Row]:
    """Lock and return (id, project, ciphertext, key id) of every connection visible and
    updatable in ``conn`` that is encrypted under another key than ``key_id``."""
    return conn.execute(
        "SELECT id, project_id, connection_url_encrypted, encryption_key_id "
        "FROM project_connections WHERE encryption_key_id <> %s FOR UPDATE",
        (key_id,),
    ).fetchall()


def set_connection_ciphertext(
    conn: DbConnection, connection_id: UUID, url_encrypted: bytes, encryption_key_id: str
) -> None:
    """Replace a connection's encrypted URL (re-encryption keeps the URL, so ``masked_url``
    and ``updated_at`` stay)."""
    conn.execute(
        "UPDATE project_connections SET connection_url_encrypted = %s, "
        "encryption_key_id = %s WHERE id = %s",
        (url_encrypted, encryption_key_id, connection_id),
    )
