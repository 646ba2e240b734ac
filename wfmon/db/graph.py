"""What the workflow graph reads: each node's latest run, its highest recorded attempt,
and one node's component rows (for its card).

Run these in the caller's unit of work (``Database.as_user``): row-level security decides
what is visible, so another user's execution simply has no rows. The saved definitions
come from :func:`wfmon.db.compare.version_definition` (one reader of workflow versions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from uuid import UUID

from psycopg import sql

from wfmon.db.columns import COMPONENT_EXECUTIONS, READABLE
from wfmon.db.database import DbConnection

Row = dict[str, Any]

# Only what a node of the graph shows: no input/output JSON (5,000 rows stay small).
_NODE_RUNS: Final = """
SELECT * FROM (
    SELECT DISTINCT ON (node_id)
           node_id, id, status, component_name, activity_type, started_at, completed_at,
           duration_ms, temporal_activity_id, temporal_attempt, retry_policy, next_retry_at,
           scheduled_event_id, count(*) OVER (PARTITION BY node_id) AS runs
    FROM component_executions
    WHERE workflow_execution_id = %(id)s
    ORDER BY node_id, scheduled_event_id DESC
) latest
ORDER BY started_at NULLS LAST, scheduled_event_id
"""


def node_runs(conn: DbConnection, execution_id: UUID) -> list[Row]:
    """One row per node of the execution: its latest run (the highest scheduling event)
    with ``runs``, how many times the node ran; in schedule order."""
    return conn.execute(_NODE_RUNS, {"id": execution_id}).fetchall()


def last_attempts(conn: DbConnection, execution: Mapping[str, Any]) -> dict[str, int]:
    """The highest attempt the worker recorded per activity id of one run (``execution``
    carries its Temporal ids); activities without recorded attempts are absent."""
    rows = conn.execute(
        """
        SELECT activity_id, max(attempt) AS attempt FROM component_execution_attempts
        WHERE temporal_namespace = %s AND temporal_workflow_id = %s AND temporal_run_id = %s
        GROUP BY activity_id
        """,
        (
            execution["temporal_namespace"],
            execution["temporal_workflow_id"],
            execution["temporal_run_id"],
        ),
    ).fetchall()
    return {r["activity_id"]: int(r["attempt"]) for r in rows}


_NODE_COMPONENTS: Final = sql.SQL(
    """
    SELECT {columns} FROM component_executions
    WHERE workflow_execution_id = %(id)s AND node_id = %(node)s
    ORDER BY started_at NULLS LAST, scheduled_event_id
    LIMIT %(limit)s
    """
).format(columns=COMPONENT_EXECUTIONS.select_list(READABLE))


def node_components(
    conn: DbConnection, execution_id: UUID, node_id: str, *, limit: int
) -> list[Row]:
    """The node's component rows (readable columns; a node can run more than once), in
    schedule order, at most ``limit``."""
    return conn.execute(
        _NODE_COMPONENTS, {"id": execution_id, "node": node_id, "limit": limit}
    ).fetchall()
