"""Create, list, get, update, delete and test project connections.

Every function runs inside the CALLER's unit of work (``Database.as_user``), so row-level
security decides what exists: another user's connection is simply not found, and a
connection can only be created in a project the caller owns. Guarantees:

- the URL is validated, then stored only encrypted (:mod:`wfmon.connections.crypto`);
  what is returned (:class:`ConnectionInfo`) carries a masked URL, never the plain one;
- names are unique per project: a duplicate raises :class:`ConnectionConflict`, also when
  two creates race (the unique constraint decides, not a prior SELECT);
- a failed statement rolls back only its own savepoint, so the caller's unit of work
  stays usable after a caught :class:`ConnectionConflict`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg.errors
from psycopg.types.json import Jsonb

from wfmon.connections.clients import classify_failure, probe
from wfmon.connections.crypto import Ciphertext, Keyring
from wfmon.connections.errors import (
    ConnectionConflict,
    ConnectionNotFound,
    HostNotAllowed,
    InvalidConnection,
)
from wfmon.connections.policy import NetworkPolicy
from wfmon.connections.urls import (
    ConnectionType,
    host_port,
    mask_url,
    parse_type,
    validate_options,
    validate_url,
)
from wfmon.db import DbConnection

MAX_NAME_LENGTH = 200
DEFAULT_TEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class ConnectionInfo:
    """A connection as users see it: the URL only masked (scheme, host, port, database)."""

    id: UUID
    project_id: UUID
    name: str
    connection_type: ConnectionType
    masked_url: str
    config: dict[str, Any]
    created_by: UUID
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ConnectionTestResult:
    """Outcome of a connectivity test. ``message`` is sanitized: never the URL or password."""

    ok: bool
    message: str
    error_type: str | None
    latency_ms: float


_COLUMNS = (
    "id, project_id, name, connection_type, masked_url, config, created_by, created_at, updated_at"
)


def _info(row: dict[str, Any]) -> ConnectionInfo:
    return ConnectionInfo(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        connection_type=ConnectionType(row["connection_type"]),
        masked_url=row["masked_url"],
        config=dict(row["config"] or {}),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidConnection("name is empty")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidConnection(f"name is longer than {MAX_NAME_LENGTH} characters")
    return name


def _as_uuid(value: UUID | str, what: str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise ConnectionNotFound(f"{what} {value!r} is not a valid id") from None


def create_connection(
    conn: DbConnection,
    *,
    project_id: UUID | str,
    name: str,
    connection_type: str,
    url: str,
    config: dict[str, Any] | None = None,
    keyring: Keyring,
    policy: NetworkPolicy | None = None,
) -> ConnectionInfo:
    """Validate, encrypt and store a new connection in ``project_id`` (owned by the caller).

    ``policy`` (when given) rejects a host that is a denied IP literal right away; the full
    check (DNS included) runs on every connect.
    """
    project = _as_uuid(project_id, "project")
    ctype = parse_type(connection_type)
    name = _check_name(name)
    validate_url(ctype, url)
    options = validate_options(ctype, config)
    if policy is not None:
        _check_literal(policy, ctype, url)
    sealed = keyring.encrypt(url, context=str(project))
    try:
        with conn.transaction():
            row = conn.execute(
                f"""
                INSERT INTO project_connections (project_id, connection_type, name,
                    connection_url_encrypted, encryption_key_id, masked_url, config, created_by)
                VALUES (%s, %s, %s, %s, %s, %s, %s, (SELECT wfmon_current_user_id()))
                RETURNING {_COLUMNS}
                """,
                (
                    project,
                    ctype.value,
                    name,
                    sealed.data,
                    sealed.key_id,
                    mask_url(ctype, url),
                    Jsonb(options),
                ),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise ConnectionConflict(
            f"a connection named {name!r} already exists in this project"
        ) from None
    except (
        psycopg.errors.InsufficientPrivilege,
        psycopg.errors.ForeignKeyViolation,
        psycopg.errors.NotNullViolation,
    ):
        # RLS WITH CHECK failed (not the caller's project), or no such project / caller.
        raise ConnectionNotFound(f"project {project} not found") from None
    assert row is not None
    return _info(row)


def list_connections(conn: DbConnection, project_id: UUID | str) -> list[ConnectionInfo]:
    """The project's connections visible to the caller, by name. Empty for other users."""
    project = _as_uuid(project_id, "project")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM project_connections WHERE project_id = %s ORDER BY name",
        (project,),
    ).fetchall()
    return [_info(r) for r in rows]


def get_connection(conn: DbConnection, connection_id: UUID | str) -> ConnectionInfo:
    """One connection; :class:`ConnectionNotFound` if it does not exist or is not visible."""
    cid = _as_uuid(connection_id, "connection")
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM project_connections WHERE id = %s", (cid,)
    ).fetchone()
    if row is None:
        raise ConnectionNotFound(f"connection {cid} not found")
    return _info(row)


def update_connection(
    conn: DbConnection,
    connection_id: UUID | str,
    *,
    keyring: Keyring,
    name: str | None = None,
    url: str | None = None,
    config: dict[str, Any] | None = None,
    policy: NetworkPolicy | None = None,
) -> ConnectionInfo:
    """Change name, URL and/or options; unchanged fields keep their values.

    A new URL is validated and encrypted with the CURRENT key.
    """
    current = get_connection(conn, connection_id)
    sets: list[str] = ["updated_at = now()"]
    params: list[Any] = []
    if name is not None:
        sets.append("name = %s")
        params.append(_check_name(name))
    if url is not None:
        validate_url(current.connection_type, url)
        if policy is not None:
            _check_literal(policy, current.connection_type, url)
        sealed = keyring.encrypt(url, context=str(current.project_id))
        sets += ["connection_url_encrypted = %s", "encryption_key_id = %s", "masked_url = %s"]
        params += [sealed.data, sealed.key_id, mask_url(current.connection_type, url)]
    if config is not None:
        sets.append("config = %s")
        params.append(Jsonb(validate_options(current.connection_type, config)))
    try:
        with conn.transaction():
            row = conn.execute(
                f"UPDATE project_connections SET {', '.join(sets)} WHERE id = %s "
                f"RETURNING {_COLUMNS}",
                (*params, current.id),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise ConnectionConflict(
            f"a connection named {name!r} already exists in this project"
        ) from None
    except psycopg.errors.InsufficientPrivilege:
        raise ConnectionNotFound(f"connection {current.id} not found") from None
    if row is None:
        raise ConnectionNotFound(f"connection {current.id} not found")
    return _info(row)


def delete_connection(conn: DbConnection, connection_id: UUID | str) -> None:
    """Delete; :class:`ConnectionNotFound` if it does not exist or is not the caller's."""
    cid = _as_uuid(connection_id, "connection")
    row = conn.execute(
        "DELETE FROM project_connections WHERE id = %s RETURNING id", (cid,)
    ).fetchone()
    if row is None:
        raise ConnectionNotFound(f"connection {cid} not found")


def load_secret(
    conn: DbConnection, connection_id: UUID | str, keyring: Keyring
) -> tuple[ConnectionInfo, str]:
    """The connection and its decrypted URL, as visible in ``conn``'s unit of work.

    For wfmon's own use (connectivity test, worker): never return the URL to a user.
    """
    cid = _as_uuid(connection_id, "connection")
    row = conn.execute(
        f"SELECT {_COLUMNS}, connection_url_encrypted, encryption_key_id "
        "FROM project_connections WHERE id = %s",
        (cid,),
    ).fetchone()
    if row is None:
        raise ConnectionNotFound(f"connection {cid} not found")
    url = keyring.decrypt(
        Ciphertext(row["encryption_key_id"], bytes(row["connection_url_encrypted"])),
        context=str(row["project_id"]),
    )
    return _info(row), url


def test_connection(
    conn: DbConnection,
    connection_id: UUID | str,
    *,
    keyring: Keyring,
    policy: NetworkPolicy,
    timeout: float = DEFAULT_TEST_TIMEOUT,
) -> ConnectionTestResult:
    """Connect to a stored connection (visible to the caller) and run one round trip.

    Synchronous, for the API's thread pool; async code calls :func:`check_connectivity`.
    """
    info, url = load_secret(conn, connection_id, keyring)
    return asyncio.run(check_connectivity(info.connection_type, url, info.config, policy, timeout))


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


async def check_connectivity(
    connection_type: ConnectionType,
    url: str,
    config: dict[str, Any],
    policy: NetworkPolicy,
    timeout: float = DEFAULT_TEST_TIMEOUT,
) -> ConnectionTestResult:
    """Connect within ``timeout`` seconds (DNS and policy check included); never raises for
    a failed connection: the result says what went wrong, in words safe to show."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(connection_type, url, config, policy), timeout)
    except Exception as exc:  # every failure becomes a sanitized result
        failure = classify_failure(exc)
        if isinstance(exc, TimeoutError):
            message = f"no answer within {timeout:g} s"
        else:
            message = failure.message
        return ConnectionTestResult(
            ok=False,
            message=message,
            error_type=failure.type,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
    elapsed = (time.perf_counter() - started) * 1000
    return ConnectionTestResult(
        ok=True, message=f"connected in {elapsed:.0f} ms", error_type=None, latency_ms=elapsed
    )


def reencrypt_connections(conn: DbConnection, keyring: Keyring) -> int:
    """Re-encrypt every connection visible AND updatable in ``conn`` that is not under the
    current key; returns how many were rewritten. Step 2 of a key rotation."""
    rows = conn.execute(
        "SELECT id, project_id, connection_url_encrypted, encryption_key_id "
        "FROM project_connections WHERE encryption_key_id <> %s FOR UPDATE",
        (keyring.current,),
    ).fetchall()
    for row in rows:
        context = str(row["project_id"])
        url = keyring.decrypt(
            Ciphertext(row["encryption_key_id"], bytes(row["connection_url_encrypted"])),
            context=context,
        )
        sealed = keyring.encrypt(url, context=context)
        conn.execute(
            "UPDATE project_connections SET connection_url_encrypted = %s, "
            "encryption_key_id = %s WHERE id = %s",
            (sealed.data, sealed.key_id, row["id"]),
        )
    return len(rows)


def _check_literal(policy: NetworkPolicy, ctype: ConnectionType, url: str) -> None:
    host, _ = host_port(ctype, url)
    try:
        policy.check_literal(host)
    except HostNotAllowed as exc:
        raise InvalidConnection(str(exc)) from None
