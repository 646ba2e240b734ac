"""Project connections as a Dagster resource: resolve and decrypt one for a project."""

from __future__ import annotations

import asyncio
from uuid import UUID

import dagster as dg
from pydantic import Field

from resources.database import WfmonDatabaseResource
from wfmon.connections.crypto import Keyring
from wfmon.connections.resolver import ConnectionResolver, ResolvedConnection


class ProjectConnectionsResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Decrypts a project's stored connection (PostgreSQL or Redis) for asset code.

    The connection must belong to the given project (the same check the worker makes);
    otherwise :class:`wfmon.connections.errors.ConnectionNotFound` is raised. The URL is
    excluded from the result's ``repr`` so it never reaches Dagster's logs. ``secret_key``
    unset means ``WFMON_SECRET_KEY``.
    """

    database: WfmonDatabaseResource
    secret_key: str | None = Field(
        default=None, description="WFMON_SECRET_KEY-style keyring (id:base64 entries)."
    )

    def keyring(self) -> Keyring:
        return Keyring.parse(self.secret_key) if self.secret_key else Keyring.from_settings()

    def resolve(self, project_id: UUID | str, connection_id: UUID | str) -> ResolvedConnection:
        """The decrypted connection ``connection_id`` of project ``project_id``."""
        resolver = ConnectionResolver(self.database.database(), self.keyring(), ttl=0)
        return asyncio.run(resolver.resolve_connection(project_id, connection_id))
