"""Executions by close-time window ``[start, end)``: what Dagster's partitions read.

Run as the system (``Database.as_system``). Rows of other namespaces belong to other
deployments and are never counted; ``exclude_task_queue`` leaves wfmon's own sync
workflows out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wfmon.db.database import DbConnection
from wfmon.db.vocabulary import FAILED

Row = dict[str, Any]


def list_closed_in_window(
    conn: DbConnection, namespace: str, start: datetime, end: datetime
) -> list[Row]:
    """(temporal_workflow_id, temporal_run_id, status, closed_at) of the recorded
    executions of ``namespace`` that closed in the window."""
    return conn.execute(
        """
        SELECT temporal_workflow_id, temporal_run_id, status, closed_at
        FROM workflow_executions
        WHERE temporal_namespace = %s AND closed_at >= %s AND closed_at < %s
        """,
        (namespace, start, end),
    ).fetchall()


def list_unsynced_in_window(
    conn: DbConnection,
    namespace: str,
    start: datetime,
    end: datetime,
    *,
    exclude_task_queue: str,
    resync: bool = False,
) -> list[Row]:
    """Temporal ids of the window's executions whose stored state is not a synced, closed
    execution (every one of them when ``resync``), by close time."""
    return conn.execute(
        """
        SELECT temporal_namespace, temporal_workflow_id, temporal_run_id
        FROM workflow_executions
        WHERE temporal_namespace = %s AND closed_at >= %s AND closed_at < %s
          AND task_queue <> %s
          AND (%s OR history_sync_status <> 'synced' OR history_synced_at IS NULL
               OR history_synced_at < closed_at)
        ORDER BY closed_at
        """,
        (namespace, start, end, exclude_task_queue, resync),
    ).fetchall()


def list_synced_in_window(
    conn: DbConnection, namespace: str, start: datetime, end: datetime, *, exclude_task_queue: str
) -> list[Row]:
    """Temporal ids of the window's executions whose history is synced."""
    return conn.execute(
        """
        SELECT temporal_namespace, temporal_workflow_id, temporal_run_id
        FROM workflow_executions
        WHERE temporal_namespace = %s AND closed_at >= %s AND closed_at < %s
          AND task_queue <> %s AND history_sync_status = 'synced'
        """,
        (namespace, start, end, exclude_task_queue),
    ).fetchall()


def count_by_status_in_window(
    conn: DbConnection, namespace: str, start: datetime, end: datetime, *, exclude_task_queue: str
) -> list[Row]:
    """Per (status, history_sync_status): executions ``n``, history ``bytes`` and
    ``events``, median (``p50``) and longest (``max_ms``) duration."""
    return conn.execute(
        """
        SELECT status, history_sync_status, count(*) AS n,
               coalesce(sum(history_bytes), 0) AS bytes,
               coalesce(sum(history_event_count), 0) AS events,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
               max(duration_ms) AS max_ms
        FROM workflow_executions
        WHERE temporal_namespace = %s AND closed_at >= %s AND closed_at < %s
          AND task_queue <> %s
        GROUP BY status, history_sync_status
        """,
        (namespace, start, end, exclude_task_queue),
    ).fetchall()


def count_components_in_window(
    conn: DbConnection, namespace: str, start: datetime, end: datetime
) -> Row:
    """Component rows (``n``), failed ones (``failed``) and their retries (``retries``) of
    the window's executions."""
    row = conn.execute(
        f"""
        SELECT count(*) AS n,
               count(*) FILTER (WHERE c.status IN {FAILED}) AS failed,
               coalesce(sum(c.retry_count), 0) AS retries
        FROM component_executions c JOIN workflow_executions e ON e.id = c.workflow_execution_id
        WHERE e.temporal_namespace = %s AND e.closed_at >= %s AND e.closed_at < %s
        """,
        (namespace, start, end),
    ).fetchone()
    assert row is not None  # an aggregate without GROUP BY: one row
    return row


def count_orphan_components(conn: DbConnection, start: datetime, end: datetime) -> int:
    """Component rows without an execution, or on an execution of the window that was
    never synced."""
    row = conn.execute(
        """
        SELECT count(*) AS n FROM component_executions c
        LEFT JOIN workflow_executions e ON e.id = c.workflow_execution_id
        WHERE e.id IS NULL
           OR (e.closed_at >= %s AND e.closed_at < %s AND e.history_sync_status <> 'synced'
               AND e.history_synced_at IS NULL)
        """,
        (start, end),
    ).fetchone()
    assert row is not None
    return int(row["n"])
