"""Reading projects and workflows as the API and the pages list them.

Run in the caller's unit of work (``Database.as_user``): row-level security decides what
exists, so a row of another user is simply absent (no existence oracle).
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from wfmon.db.database import DbConnection

Row = dict[str, Any]

_PROJECT: Final = """
    SELECT p.id, p.name, p.description, p.created_at,
           (SELECT count(*) FROM workflows w WHERE w.project_id = p.id) AS workflow_count
    FROM projects p
"""

_WORKFLOW: Final = """
    SELECT w.id, w.project_id, w.name, w.description, v.name AS visibility,
           w.current_version, w.created_at, w.updated_at,
           coalesce(jsonb_array_length(CASE WHEN jsonb_typeof(w.definition -> 'nodes') = 'array'
                                            THEN w.definition -> 'nodes' END), 0) AS node_count,
           w.created_by = wfmon_current_user_id() AS owned,
           (SELECT p.name FROM projects p WHERE p.id = w.project_id) AS project_name
    FROM workflows w JOIN component_visibility v ON v.id = w.visibility_id
"""


def list_projects(conn: DbConnection) -> list[Row]:
    """The caller's projects with their workflow counts, by name."""
    return conn.execute(_PROJECT + " ORDER BY p.name, p.id").fetchall()


def get_project(conn: DbConnection, project_id: UUID) -> Row | None:
    """One project with its workflow count, or None when missing or not the caller's."""
    return conn.execute(_PROJECT + " WHERE p.id = %s", (project_id,)).fetchone()


def list_workflows(conn: DbConnection, project_id: UUID) -> list[Row]:
    """The project's workflows the caller may see, by name."""
    return conn.execute(
        _WORKFLOW + " WHERE w.project_id = %s ORDER BY w.name, w.id", (project_id,)
    ).fetchall()


def get_workflow(conn: DbConnection, workflow_id: UUID) -> Row | None:
    """One workflow (own or public), or None when missing or not visible."""
    return conn.execute(_WORKFLOW + " WHERE w.id = %s", (workflow_id,)).fetchone()


def get_workflow_name(conn: DbConnection, workflow_id: UUID | None) -> str | None:
    """The workflow's name, or None (no id, missing or not visible)."""
    if workflow_id is None:
        return None
    row = conn.execute("SELECT name FROM workflows WHERE id = %s", (workflow_id,)).fetchone()
    return row["name"] if row else None
