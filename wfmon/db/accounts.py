"""Users, projects and workflows: what seeding, tests and the builder API create.

Each function runs inside the caller's unit of work (``Database.as_user`` /
``as_system``), so row-level security decides whether it may: users are provisioned by the
system; projects, workflows and versions are created by the user who will own them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from wfmon.db.database import DbConnection
from wfmon.db.rows import Json, Project, RoleName, User, Visibility, Workflow


def current_user_id(conn: DbConnection) -> UUID | None:
    """``users.id`` of the caller of this unit of work, or None (anonymous / no users row)."""
    row = conn.execute("SELECT wfmon_current_user_id() AS id").fetchone()
    return row["id"] if row else None


def create_user(
    conn: DbConnection,
    *,
    auth_user_id: UUID,
    email: str,
    display_name: str = "",
    role: RoleName = "member",
) -> User:
    """Insert a user (system unit of work only) and return it."""
    row = conn.execute(
        """
        INSERT INTO users (auth_user_id, email, display_name, role_id)
        SELECT %(auth)s, %(email)s, %(display_name)s, r.id FROM user_roles r WHERE r.name = %(role)s
        RETURNING id, auth_user_id, email, display_name
        """,
        {"auth": auth_user_id, "email": email, "display_name": display_name, "role": role},
    ).fetchone()
    if row is None:
        raise ValueError(f"unknown role {role!r}")
    return User(role=role, **row)


def create_project(conn: DbConnection, *, name: str, created_by: UUID) -> Project:
    """Insert a project owned by ``created_by`` (RLS: must be the caller) and return it."""
    row = conn.execute(
        "INSERT INTO projects (name, created_by) VALUES (%s, %s) RETURNING id, name, created_by",
        (name, created_by),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING of one row
    return Project(**row)


def create_workflow(
    conn: DbConnection,
    *,
    project_id: UUID,
    created_by: UUID,
    name: str,
    definition: Json,
    visibility: Visibility = "private",
) -> Workflow:
    """Insert a workflow at version 1 together with its version-1 snapshot."""
    row = conn.execute(
        """
        INSERT INTO workflows (project_id, created_by, name, visibility_id, definition)
        SELECT %(project)s, %(by)s, %(name)s, v.id, %(definition)s
        FROM component_visibility v WHERE v.name = %(visibility)s
        RETURNING id, project_id, created_by, name, current_version, definition
        """,
        {
            "project": project_id,
            "by": created_by,
            "name": name,
            "definition": Jsonb(definition),
            "visibility": visibility,
        },
    ).fetchone()
    if row is None:
        raise ValueError(f"unknown visibility {visibility!r}")
    conn.execute(
        """
        INSERT INTO workflow_versions (workflow_id, version, definition, created_by)
        VALUES (%s, 1, %s, %s)
        """,
        (row["id"], Jsonb(definition), created_by),
    )
    return Workflow(visibility=visibility, **row)


def save_workflow_version(
    conn: DbConnection, *, workflow_id: UUID, definition: Json, created_by: UUID
) -> int:
    """Make ``definition`` the workflow's next version; return the new version number.

    The workflow row is locked first, so two concurrent saves get consecutive versions.
    """
    row = conn.execute(
        """
        UPDATE workflows SET current_version = current_version + 1,
                             definition = %(definition)s, updated_at = now()
        WHERE id = %(id)s
        RETURNING current_version
        """,
        {"id": workflow_id, "definition": Jsonb(definition)},
    ).fetchone()
    if row is None:
        raise LookupError(f"workflow {workflow_id} does not exist or is not yours")
    version: int = row["current_version"]
    conn.execute(
        """
        INSERT INTO workflow_versions (workflow_id, version, definition, created_by)
        VALUES (%s, %s, %s, %s)
        """,
        (workflow_id, version, Jsonb(definition), created_by),
    )
    return version


def find_user_id(conn: DbConnection, auth_user_id: UUID) -> UUID | None:
    """``users.id`` of the user whose ``auth.uid()`` is ``auth_user_id``, or None."""
    row = conn.execute("SELECT id FROM users WHERE auth_user_id = %s", (auth_user_id,)).fetchone()
    return row["id"] if row else None


def find_users(
    conn: DbConnection, *, auth_user_id: UUID | None = None, email: str | None = None
) -> list[dict[str, Any]]:
    """(``auth_user_id``, ``email``) of the users with this auth user id, or with this
    email (case-insensitive; users nobody signs in as are left out). Give exactly one."""
    if (auth_user_id is None) == (email is None):
        raise ValueError("give an auth user id or an email")
    if auth_user_id is not None:
        return conn.execute(
            "SELECT auth_user_id, email FROM users WHERE auth_user_id = %s", (auth_user_id,)
        ).fetchall()
    return conn.execute(
        "SELECT auth_user_id, email FROM users "
        "WHERE lower(email) = lower(%s) AND auth_user_id IS NOT NULL",
        (email,),
    ).fetchall()


def find_project_id(conn: DbConnection, name: str) -> UUID | None:
    """Id of a project named ``name`` the caller may see, or None."""
    row = conn.execute("SELECT id FROM projects WHERE name = %s", (name,)).fetchone()
    return row["id"] if row else None


def find_workflow_id(conn: DbConnection, project_id: UUID, name: str) -> UUID | None:
    """Id of the workflow named ``name`` in the project, or None (missing or not visible)."""
    row = conn.execute(
        "SELECT id FROM workflows WHERE project_id = %s AND name = %s", (project_id, name)
    ).fetchone()
    return row["id"] if row else None
