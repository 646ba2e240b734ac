"""Workflow definitions as the caller may read them (the pages' workflow overview).

Each function takes a connection from a unit of work (``Database.as_user`` or
``as_system``) and runs one parameterised statement; row-level security decides what
the caller sees.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from wfmon.db.database import DbConnection


def workflow_nodes(conn: DbConnection, workflow_id: UUID) -> list[dict[str, Any]]:
    """The ``nodes`` of the workflow's current definition; empty when the workflow is not
    visible to the caller or its definition has no node list."""
    row = conn.execute(
        "SELECT definition FROM workflows WHERE id = %(workflow)s", {"workflow": workflow_id}
    ).fetchone()
    definition = (row or {}).get("definition") or {}
    nodes = definition.get("nodes", []) if isinstance(definition, dict) else []
    return nodes if isinstance(nodes, list) else []
