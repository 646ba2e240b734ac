"""Which project a Temporal namespace's unbuilt workflows belong to (migrations/0551).

Sync registers workflows nobody built in the project a namespace is assigned to, as its
owner (:func:`wfmon.db.sync.discovered_owner`); otherwise in the Discovered project.
Assigning is the operator's act, run as the system (``Database.as_system``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

from wfmon.db.database import DbConnection


class UnknownProject(LookupError):
    """The project to assign a namespace to does not exist."""


@dataclass(frozen=True)
class NamespaceOwner:
    temporal_namespace: str
    project_id: UUID
    created_by: UUID
    created_at: datetime


_ASSIGN: Final = """
INSERT INTO temporal_namespace_owners (temporal_namespace, project_id, created_by)
SELECT %(namespace)s, p.id, p.created_by FROM projects p WHERE p.id = %(project)s
ON CONFLICT (temporal_namespace) DO UPDATE
    SET project_id = EXCLUDED.project_id, created_by = EXCLUDED.created_by, created_at = now()
RETURNING temporal_namespace, project_id, created_by, created_at
"""


def assign_namespace(conn: DbConnection, namespace: str, project_id: UUID) -> NamespaceOwner:
    """Give ``namespace`` to ``project_id`` (replacing an earlier assignment).

    Executions already recorded keep their owner; the next ones of workflows nobody built
    go to this project. Raises :class:`UnknownProject` (nothing written) when there is no
    such project, ``ValueError`` for an empty namespace.
    """
    if not namespace.strip():
        raise ValueError("the Temporal namespace must not be empty")
    row = conn.execute(_ASSIGN, {"namespace": namespace, "project": project_id}).fetchone()
    if row is None:
        raise UnknownProject(f"no project with id {project_id}")
    return NamespaceOwner(**row)


def namespace_owner(conn: DbConnection, namespace: str) -> NamespaceOwner | None:
    """The assignment of ``namespace``, if any (as visible to the caller)."""
    row = conn.execute(
        "SELECT temporal_namespace, project_id, created_by, created_at"
        " FROM temporal_namespace_owners WHERE temporal_namespace = %s",
        (namespace,),
    ).fetchone()
    return NamespaceOwner(**row) if row else None
