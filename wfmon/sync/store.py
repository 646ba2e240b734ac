"""The database side of sync: ownership of an execution, the sync lease, and the write.

Every function takes a connection inside a ``Database.as_system()`` unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from uuid import UUID

from wfmon.db.database import DbConnection
from wfmon.db.rows import DISCOVERED_PROJECT_ID, SYSTEM_USER_ID


@dataclass(frozen=True)
class Owner:
    """Who an execution belongs to in wfmon."""

    created_by: UUID
    project_id: UUID
    workflow_id: UUID
    workflow_version: int | None


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


_BUILDER_OWNER: Final = """
SELECT w.id AS workflow_id, w.project_id, w.created_by,
       (SELECT v.version FROM workflow_versions v
        WHERE v.workflow_id = w.id AND v.version = %(version)s) AS workflow_version
FROM workflows w
WHERE w.id = %(workflow)s AND w.created_by = %(user)s AND w.project_id = %(project)s
"""

_DISCOVERED_WORKFLOW: Final = """
WITH inserted AS (
    INSERT INTO workflows (project_id, created_by, name, description, visibility_id)
    SELECT %(project)s, %(user)s, %(name)s, %(description)s, v.id
    FROM component_visibility v WHERE v.name = 'private'
    ON CONFLICT (project_id, name) DO NOTHING
    RETURNING id)
SELECT id FROM inserted
UNION ALL
SELECT id FROM workflows WHERE project_id = %(project)s AND name = %(name)s
LIMIT 1
"""


def resolve_owner(
    conn: DbConnection,
    *,
    namespace: str,
    workflow_type: str,
    wfmon_workflow_id: object,
    project_id: object,
    user_id: object,
    definition_version: int | None,
) -> Owner:
    """The owner recorded by the builder (memo ids), when they name a real workflow of that
    user in that project; otherwise the Discovered project's workflow for this
    (namespace, workflow type), registered on first sight. Never fails for unknown ids."""
    ids = (_uuid(wfmon_workflow_id), _uuid(project_id), _uuid(user_id))
    if all(ids):
        row = conn.execute(
            _BUILDER_OWNER,
            {"workflow": ids[0], "project": ids[1], "user": ids[2], "version": definition_version},
        ).fetchone()
        if row is not None:
            return Owner(
                created_by=row["created_by"],
                project_id=row["project_id"],
                workflow_id=row["workflow_id"],
                workflow_version=row["workflow_version"],
            )
    return Owner(
        created_by=SYSTEM_USER_ID,
        project_id=DISCOVERED_PROJECT_ID,
        workflow_id=discovered_workflow_id(conn, namespace, workflow_type),
        workflow_version=None,
    )


def discovered_workflow_id(conn: DbConnection, namespace: str, workflow_type: str) -> UUID:
    """The Discovered project's workflow for ``workflow_type`` in ``namespace`` (created
    once; concurrent callers get the same row)."""
    params = {
        "project": DISCOVERED_PROJECT_ID,
        "user": SYSTEM_USER_ID,
        "name": f"{namespace}/{workflow_type}",
        "description": f"Executions of workflow type {workflow_type!r} found in Temporal "
        f"namespace {namespace!r}",
    }
    row = conn.execute(_DISCOVERED_WORKFLOW, params).fetchone()
    if row is None:  # a concurrent insert not yet visible: its commit makes it so
        row = conn.execute(
            "SELECT id FROM workflows WHERE project_id = %(project)s AND name = %(name)s",
            params,
        ).fetchone()
    assert row is not None
    workflow_id: UUID = row["id"]
    return workflow_id


def component_ids(conn: DbConnection) -> dict[str, UUID]:
    """Registered components by name."""
    return {r["name"]: r["id"] for r in conn.execute("SELECT id, name FROM components")}


def execution_ids(
    conn: DbConnection, namespace: str, runs: list[tuple[str, str]]
) -> dict[tuple[str, str], UUID]:
    """Ids of the executions among ``runs`` ((workflow id, run id) pairs) already known."""
    if not runs:
        return {}
    rows = conn.execute(
        """
        SELECT e.temporal_workflow_id, e.temporal_run_id, e.id
        FROM workflow_executions e
        JOIN unnest(%s::text[], %s::text[]) AS r(wid, rid)
          ON e.temporal_workflow_id = r.wid AND e.temporal_run_id = r.rid
        WHERE e.temporal_namespace = %s
        """,
        ([w for w, _ in runs], [r for _, r in runs], namespace),
    )
    return {(r["temporal_workflow_id"], r["temporal_run_id"]): r["id"] for r in rows}


# -- the sync lease -----------------------------------------------------------------------


def acquire_lease(conn: DbConnection, execution_id: UUID, owner: str, seconds: float) -> bool:
    """Take (or renew) the sync lease of an execution for ``seconds``.

    True when ``owner`` now holds it: it was free, expired, or already ``owner``'s.
    A crashed syncer's lease simply expires, so no execution stays stuck.
    """
    row = conn.execute(
        """
        UPDATE workflow_executions
        SET sync_lease_owner = %(owner)s,
            sync_lease_expires_at = now() + make_interval(secs => %(seconds)s)
        WHERE id = %(id)s
          AND (sync_lease_owner IS NULL OR sync_lease_owner = %(owner)s
               OR sync_lease_expires_at < now())
        RETURNING id
        """,
        {"id": execution_id, "owner": owner, "seconds": seconds},
    ).fetchone()
    return row is not None


def release_lease(conn: DbConnection, execution_id: UUID, owner: str) -> bool:
    """Give the lease back; False when ``owner`` no longer held it (it expired and another
    syncer took it), in which case the caller must not commit its write."""
    row = conn.execute(
        """
        UPDATE workflow_executions
        SET sync_lease_owner = NULL, sync_lease_expires_at = NULL
        WHERE id = %s AND sync_lease_owner = %s
        RETURNING id
        """,
        (execution_id, owner),
    ).fetchone()
    return row is not None
