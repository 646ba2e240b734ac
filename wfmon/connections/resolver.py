"""Worker side: turn a node's ``connection_id`` into a usable, decrypted connection.

The URL never travels through Temporal: nodes carry only the connection id, and the worker
reads and decrypts the row as the system role. The resolver checks that the connection
belongs to the execution's project, so a definition cannot borrow another project's
connection by copying its id.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from wfmon.connections.crypto import Keyring
from wfmon.connections.errors import ConnectionNotFound
from wfmon.connections.service import load_secret
from wfmon.connections.urls import ConnectionType
from wfmon.db import Database


@dataclass(frozen=True)
class ResolvedConnection:
    """A decrypted connection. ``url`` is excluded from ``repr`` so it never gets logged."""

    id: UUID
    project_id: UUID
    name: str
    connection_type: ConnectionType
    masked_url: str
    config: dict[str, Any]
    #: Changes whenever the row changes: pools are keyed by it, so an edited URL is used
    #: on the next activity without restarting the worker.
    version: str
    url: str = field(repr=False)


class ConnectionResolver:
    """Resolves ``(project_id, connection_id)`` as the system role; caches for ``ttl``
    seconds (a few seconds: edits take effect quickly, hot nodes skip a query)."""

    def __init__(self, db: Database, keyring: Keyring, *, ttl: float = 5.0) -> None:
        self._db = db
        self._keyring = keyring
        self._ttl = ttl
        self._cache: dict[tuple[UUID, UUID], tuple[float, ResolvedConnection]] = {}

    async def resolve_connection(
        self, project_id: UUID | str, connection_id: UUID | str
    ) -> ResolvedConnection:
        """The connection, decrypted. Raises :class:`ConnectionNotFound` if it does not
        exist or belongs to another project (same error: ids cannot be probed)."""
        try:
            key = (UUID(str(project_id)), UUID(str(connection_id)))
        except ValueError:
            raise ConnectionNotFound(f"connection {connection_id!r} not found") from None
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        resolved = await asyncio.to_thread(self._load, *key)
        self._cache[key] = (now, resolved)
        return resolved

    def invalidate(self) -> None:
        self._cache.clear()

    def _load(self, project_id: UUID, connection_id: UUID) -> ResolvedConnection:
        return load_connection(self._db, self._keyring, project_id, connection_id)


def load_connection(
    db: Database, keyring: Keyring, project_id: UUID, connection_id: UUID | str
) -> ResolvedConnection:
    """Read and decrypt ``connection_id`` as the system role; it must belong to
    ``project_id`` (:class:`ConnectionNotFound` otherwise, as for an unknown id)."""
    with db.as_system() as conn:
        info, url = load_secret(conn, connection_id, keyring)
    if info.project_id != project_id:
        raise ConnectionNotFound(f"connection {connection_id} not found in this project")
    return ResolvedConnection(
        id=info.id,
        project_id=info.project_id,
        name=info.name,
        connection_type=info.connection_type,
        masked_url=info.masked_url,
        config=info.config,
        version=info.updated_at.isoformat(),
        url=url,
    )
