"""Project connections as a Dagster resource: resolve and decrypt one for a project."""

from __future__ import annotations

from uuid import UUID

import dagster as dg
from pydantic import Field

from resources.database import WfmonDatabaseResource
from wfmon.connections.crypto import Keyring
from wfmon.connections.errors import ConnectionNotFound
from wfmon.connections.resolver import ResolvedConnection, load_connection


class ProjectConnectionsResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Decrypts a project's stored connection (PostgreSQL or Redis) for asset code.

    Guarantees: the row is read as the system role and must belong to the given project
    (the same check the worker makes), otherwise
    :class:`wfmon.connections.errors.ConnectionNotFound` is raised — the same error as for
    an unknown id, so ids cannot be probed. The URL is excluded from the result's ``repr``,
    so it never reaches Dagster's logs. Synchronous (usable from notebooks, whose event
    loop is already running). ``secret_key`` unset means ``WFMON_SECRET_KEY``.
    """

    database: WfmonDatabaseResource
    secret_key: str | None = Field(
        default=None, description="WFMON_SECRET_KEY-style keyring (id:base64 entries)."
    )

    def keyring(self) -> Keyring:
        return Keyring.parse(self.secret_key) if self.secret_key else Keyring.from_settings()

    def resolve(self, project_id: UUID | str, connection_id: UUID | str) -> ResolvedConnection:
        """The decrypted connection ``connection_id`` of project ``project_id``."""
        try:
            project = UUID(str(project_id))
        except ValueError:
            raise ConnectionNotFound(f"project {project_id!r} not found") from None
        return load_connection(self.database.database(), self.keyring(), project, connection_id)
