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
from wfmon.db import connections as stored

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
            row = stored.insert_project_connection(
                conn,
                project_id=project,
                connection_type=ctype.value,
                name=name,
                url_encrypted=sealed.data,
                encryption_key_id=sealed.key_id,
                masked_url=mask_url(ctype, url),
                config=options,
            )
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
    return [_info(r) for r in stored.list_project_connections(conn, project)]


def get_connection(conn: DbConnection, connection_id: UUID | str) -> ConnectionInfo:
    """One connection; :class:`ConnectionNotFound` if it does not exist or is not visible."""
    cid = _as_uuid(connection_id, "connection")
    row = stored.get_project_connection(conn, cid)
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
    new_name = None if name is None else _check_name(name)
    sealed: Ciphertext | None = None
    masked: str | None = None
    if url is not None:
        validate_url(current.connection_type, url)
        if policy is not None:
            _check_literal(policy, current.connection_type, url)
        sealed = keyring.encrypt(url, context=str(current.project_id))
        masked = mask_url(current.connection_type, url)
    options = None if config is None else validate_options(current.connection_type, config)
    try:
        with conn.transaction():
            row = stored.update_project_connection(
                conn,
                current.id,
                name=new_name,
                url_encrypted=None if sealed is None else sealed.data,
                encryption_key_id=None if sealed is None else sealed.key_id,
                masked_url=masked,
                config=options,
            )
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
    if not stored.delete_project_connection(conn, cid):
        raise ConnectionNotFound(f"connection {cid} not found")


def load_secret(
    conn: DbConnection, connection_id: UUID | str, keyring: Keyring
) -> tuple[ConnectionInfo, str]:
    """The connection and its decrypted URL, as visible in ``conn``'s unit of work.

    For wfmon's own use (connectivity test, worker): never return the URL to a user.
    """
    cid = _as_uuid(connection_id, "connection")
    row = stored.get_project_connection_secret(conn, cid)
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
    rows = stored.lock_connections_not_under_key(conn, keyring.current)
    for row in rows:
        context = str(row["project_id"])
        url = keyring.decrypt(
            Ciphertext(row["encryption_key_id"], bytes(row["connection_url_encrypted"])),
            context=context,
        )
        sealed = keyring.encrypt(url, context=context)
        stored.set_connection_ciphertext(conn, row["id"], sealed.data, sealed.key_id)
    return len(rows)


def _check_literal(policy: NetworkPolicy, ctype: ConnectionType, url: str) -> None:
    host, _ = host_port(ctype, url)
    try:
        policy.check_literal(host)
    except HostNotAllowed as exc:
        raise InvalidConnection(str(exc)) from None
