"""Workflow versions as the editor reads them, and the execution a run started.

Every function runs in the caller's unit of work (``Database.as_user``): row-level
security decides what exists. A workflow the caller may only read (someone else's public
one) is visible to :func:`workflow_for_edit` with ``owned = false``; writes to it match no
row. Creating a workflow and its first version is :func:`wfmon.db.accounts.create_workflow`;
adding a version is :func:`wfmon.db.accounts.save_workflow_version` (after
:func:`lock_current_version`).
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from wfmon.db.database import DbConnection

Row = dict[str, Any]

_EDITABLE: Final = """
    SELECT w.id, w.project_id, w.name, w.current_version, w.definition,
           v.name AS visibility, w.created_by = wfmon_current_user_id() AS owned
    FROM workflows w JOIN component_visibility v ON v.id = w.visibility_id
    WHERE w.id = %s
"""


def workflow_for_edit(conn: DbConnection, workflow_id: UUID) -> Row | None:
    """The workflow with its current definition and whether the caller owns it; None when
    it is missing or not visible."""
    return conn.execute(_EDITABLE, (workflow_id,)).fetchone()


def lock_current_version(conn: DbConnection, workflow_id: UUID) -> int | None:
    """Lock the caller's own workflow row until the transaction ends and return its current
    version (None: missing or not the caller's), so a save can check what it edited."""
    row = conn.execute(
        "SELECT current_version FROM workflows "
        "WHERE id = %s AND created_by = wfmon_current_user_id() FOR UPDATE",
        (workflow_id,),
    ).fetchone()
    return row["current_version"] if row else None


def list_versions(conn: DbConnection, workflow_id: UUID) -> list[Row]:
    """Every saved version of the workflow, newest first: number, time, node and edge
    counts, and how many of the caller's executions ran it."""
    return conn.execute(
        """
        SELECT v.version, v.created_at,
               coalesce(jsonb_array_length(CASE WHEN jsonb_typeof(v.definition -> 'nodes')
                                                = 'array' THEN v.definition -> 'nodes' END),
                        0) AS node_count,
               coalesce(jsonb_array_length(CASE WHEN jsonb_typeof(v.definition -> 'edges')
                                                = 'array' THEN v.definition -> 'edges' END),
                        0) AS edge_count,
               (SELECT count(*) FROM workflow_executions e
                WHERE e.workflow_id = v.workflow_id AND e.workflow_version = v.version)
                   AS execution_count
        FROM workflow_versions v
        WHERE v.workflow_id = %s
        ORDER BY v.version DESC
        """,
        (workflow_id,),
    ).fetchall()


def get_version(conn: DbConnection, workflow_id: UUID, version: int) -> Row | None:
    """One saved version (number, time, definition), or None."""
    return conn.execute(
        "SELECT version, created_at, definition FROM workflow_versions "
        "WHERE workflow_id = %s AND version = %s",
        (workflow_id, version),
    ).fetchone()


def execution_of_run(
    conn: DbConnection, namespace: str, workflow_id: str, run_id: str
) -> UUID | None:
    """The wfmon id of the caller's execution of this Temporal run, or None (not recorded
    yet, or not the caller's). Execution rows are written by the system from Temporal
    (migration 0301): users never insert them."""
    row = conn.execute(
        "SELECT id FROM workflow_executions WHERE temporal_namespace = %s "
        "AND temporal_workflow_id = %s AND temporal_run_id = %s",
        (namespace, workflow_id, run_id),
    ).fetchone()
    return row["id"] if row else None
