"""Reading one execution in full: its row, its component rows and every recorded attempt.

Run these in the caller's unit of work (``as_user``): row-level security decides what is
visible, so another user's execution simply is not found.
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from wfmon.db.database import DbConnection

#: Execution columns a reader gets (the history JSON is fetched on its own: it can be MBs).
_EXECUTION_COLUMNS: Final = """
    id, temporal_namespace, temporal_workflow_id, temporal_run_id, first_run_id,
    workflow_type, task_queue, status, started_at, closed_at, duration_ms, created_by,
    project_id, workflow_id, workflow_version, input, output, error_message,
    history_synced_at, history_sync_status, history_sync_error, history_event_count,
    history_bytes,
    (SELECT max(a.updated_at) FROM component_execution_attempts a
     WHERE a.temporal_namespace = e.temporal_namespace
       AND a.temporal_workflow_id = e.temporal_workflow_id
       AND a.temporal_run_id = e.temporal_run_id) AS attempts_updated_at
"""


def get_execution(conn: DbConnection, execution_id: UUID) -> dict[str, Any] | None:
    """The execution row (no history JSON), or None when missing or not visible."""
    return conn.execute(
        f"SELECT {_EXECUTION_COLUMNS} FROM workflow_executions e WHERE id = %s", (execution_id,)
    ).fetchone()


def get_execution_version(conn: DbConnection, execution_id: UUID) -> dict[str, Any] | None:
    """The execution's identity, status and sync fields, ``row_version`` (the row's
    ``xmin``, which every update changes) and ``attempts_updated_at``: what a freshness
    check or a cache lookup needs. None when missing or not visible. No JSON columns, so
    it is cheap."""
    return conn.execute(
        """
        SELECT id, temporal_namespace, temporal_workflow_id, temporal_run_id, status,
               history_sync_status, history_synced_at, history_sync_error,
               xmin::text AS row_version,
               (SELECT max(a.updated_at) FROM component_execution_attempts a
                WHERE a.temporal_namespace = e.temporal_namespace
                  AND a.temporal_workflow_id = e.temporal_workflow_id
                  AND a.temporal_run_id = e.temporal_run_id) AS attempts_updated_at
        FROM workflow_executions e WHERE id = %s
        """,
        (execution_id,),
    ).fetchone()


def find_execution(
    conn: DbConnection, namespace: str, workflow_id: str, run_id: str
) -> dict[str, Any] | None:
    """The execution with these Temporal ids, or None when missing or not visible."""
    return conn.execute(
        f"SELECT {_EXECUTION_COLUMNS} FROM workflow_executions e "
        "WHERE temporal_namespace = %s AND temporal_workflow_id = %s AND temporal_run_id = %s",
        (namespace, workflow_id, run_id),
    ).fetchone()


def list_component_executions(conn: DbConnection, execution_id: UUID) -> list[dict[str, Any]]:
    """Component rows of an execution in schedule order."""
    return conn.execute(
        "SELECT * FROM component_executions WHERE workflow_execution_id = %s "
        "ORDER BY started_at NULLS LAST, scheduled_event_id",
        (execution_id,),
    ).fetchall()


def list_attempts(
    conn: DbConnection, namespace: str, workflow_id: str, run_id: str
) -> list[dict[str, Any]]:
    """Every recorded attempt of every activity of one run, by activity id then attempt."""
    return conn.execute(
        """
        SELECT activity_id, attempt, activity_type, started_at, ended_at, outcome,
               failure_type, failure_message, failure_stack, worker_identity
        FROM component_execution_attempts
        WHERE temporal_namespace = %s AND temporal_workflow_id = %s AND temporal_run_id = %s
        ORDER BY activity_id, attempt
        """,
        (namespace, workflow_id, run_id),
    ).fetchall()


def get_history_json(conn: DbConnection, execution_id: UUID) -> Any:
    """The stored raw history (``{"events": [...]}``), or None when not synced/visible."""
    row = conn.execute(
        "SELECT temporal_history_json FROM workflow_executions WHERE id = %s", (execution_id,)
    ).fetchone()
    return row["temporal_history_json"] if row else None
