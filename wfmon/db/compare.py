"""What comparing two runs reads: both executions, their node rows, their definition
versions, the default partner and the picker's candidates.

Run these in the caller's unit of work (``Database.as_user``): row-level security decides
what is visible, so an execution (or workflow version) the caller may not see is simply
not found. Each function is one parameterised statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

from wfmon.db.database import DbConnection

Row = dict[str, Any]

_EXECUTION: Final = """
SELECT e.id, e.workflow_id, e.workflow_version, e.workflow_type, e.status, e.started_at,
       e.closed_at, e.duration_ms, e.error_message, e.temporal_workflow_id,
       e.temporal_run_id, w.name AS workflow_name
FROM workflow_executions e LEFT JOIN workflows w ON w.id = e.workflow_id
WHERE e.id = %(id)s
"""


def compared_execution(conn: DbConnection, execution_id: UUID) -> Row | None:
    """The execution's summary (no payloads, no history) with its workflow's name; None
    when missing or not visible."""
    return conn.execute(_EXECUTION, {"id": execution_id}).fetchone()


#: Each node's latest component row (a node can run more than once: ``runs`` counts them),
#: payloads as canonical JSON text so equal ones compare as strings without parsing.
_NODE_ROWS: Final = """
SELECT * FROM (
    SELECT DISTINCT ON (node_id)
           node_id, coalesce(component_name, activity_type) AS component, status,
           started_at, scheduled_event_id, duration_ms, temporal_attempt, error_message,
           error_type, input_data::text AS input_json, output_data::text AS output_json,
           count(*) OVER (PARTITION BY node_id) AS runs
    FROM component_executions
    WHERE workflow_execution_id = %(id)s
    ORDER BY node_id, scheduled_event_id DESC
) latest
ORDER BY started_at NULLS LAST, scheduled_event_id
"""


def node_rows(conn: DbConnection, execution_id: UUID) -> list[Row]:
    """One row per node of the execution (its latest run), in schedule order (start time,
    then the scheduling event)."""
    return conn.execute(_NODE_ROWS, {"id": execution_id}).fetchall()


def version_definition(conn: DbConnection, workflow_id: UUID, version: int) -> Any:
    """The saved definition of ``workflow_id`` at ``version``, or None when there is no
    such version or the caller may not read the workflow."""
    row = conn.execute(
        "SELECT definition FROM workflow_versions "
        "WHERE workflow_id = %(workflow)s AND version = %(version)s",
        {"workflow": workflow_id, "version": version},
    ).fetchone()
    return row["definition"] if row else None


def execution_input(conn: DbConnection, execution_id: UUID) -> Any:
    """The execution's input (a builder run carries its definition there), or None."""
    row = conn.execute(
        "SELECT input FROM workflow_executions WHERE id = %(id)s", {"id": execution_id}
    ).fetchone()
    return row["input"] if row else None


_LAST_SUCCESSFUL: Final = """
SELECT id FROM workflow_executions
WHERE workflow_id = %(workflow)s AND status = 'completed'
  AND workflow_version IS NOT DISTINCT FROM %(version)s
  AND id <> %(id)s
  AND (started_at, id) < (%(before)s, %(id)s)
ORDER BY started_at DESC, id DESC
LIMIT 1
"""


def last_successful_before(
    conn: DbConnection,
    *,
    execution_id: UUID,
    workflow_id: UUID,
    version: int | None,
    started_at: datetime,
) -> UUID | None:
    """The latest completed execution of the same workflow version that started before
    ``execution_id`` (ties on the start time broken by id), or None."""
    row = conn.execute(
        _LAST_SUCCESSFUL,
        {"workflow": workflow_id, "version": version, "id": execution_id, "before": started_at},
    ).fetchone()
    return row["id"] if row else None


_RECENT: Final = """
SELECT id, status, workflow_version, started_at, duration_ms
FROM workflow_executions
WHERE workflow_id = %(workflow)s AND id <> %(id)s
ORDER BY started_at DESC, id DESC
LIMIT %(limit)s
"""


def recent_executions(
    conn: DbConnection, *, workflow_id: UUID, execution_id: UUID, limit: int = 25
) -> list[Row]:
    """The workflow's latest executions other than ``execution_id``, newest first."""
    return conn.execute(
        _RECENT, {"workflow": workflow_id, "id": execution_id, "limit": limit}
    ).fetchall()
