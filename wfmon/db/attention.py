"""Needs attention: what in a project wants a look now.

* ``retrying``: executions with a component retrying right now (status ``retrying``,
  written by live sync from Temporal's pending activities): attempt, last error, next retry.
* ``unexpected``: closed or running executions with a component whose retries were not
  expected under its retry policy (``retry_count > 0 and not is_expected_retry``).
* ``failing``: workflows whose last closed run failed and that have not succeeded since.

Every statement runs on the caller's connection (``Database.as_user``): row-level security
shows a user their own executions only.
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from wfmon.db.database import DbConnection
from wfmon.model.vocabulary import FAILURE_STATUSES

#: Most items listed per kind.
MAX_ITEMS: Final = 100
_FAILURES: Final = sorted(FAILURE_STATUSES)


def retrying_components(
    conn: DbConnection, project_id: UUID, limit: int = MAX_ITEMS
) -> list[dict[str, Any]]:
    """Components retrying right now in the project's running executions, next retry first."""
    rows = conn.execute(
        """
        SELECT e.id AS execution_id, e.temporal_workflow_id, e.workflow_id,
               w.name AS workflow_name, e.started_at, c.node_id,
               coalesce(c.component_name, c.activity_type, c.node_id) AS component_name,
               c.temporal_attempt, c.retry_count, c.retry_policy, c.next_retry_at,
               coalesce(f.failure_type, c.error_type) AS error_type,
               coalesce(f.failure_message, c.error_message) AS error_message
        FROM workflow_executions e
        JOIN component_executions c ON c.workflow_execution_id = e.id
        LEFT JOIN workflows w ON w.id = e.workflow_id
        -- The last error: the newest failed attempt the worker recorded (Temporal keeps
        -- only the last failure of a retrying activity, in its pending-activity info).
        LEFT JOIN LATERAL (
            SELECT a.failure_type, a.failure_message
            FROM component_execution_attempts a
            WHERE a.temporal_namespace = e.temporal_namespace
              AND a.temporal_workflow_id = e.temporal_workflow_id
              AND a.temporal_run_id = e.temporal_run_id
              AND a.activity_id = coalesce(c.temporal_activity_id, c.node_id)
              AND a.failure_message IS NOT NULL
            ORDER BY a.attempt DESC
            LIMIT 1
        ) f ON true
        WHERE e.project_id = %(project_id)s AND e.status = 'running'
          AND c.status = 'retrying'
        ORDER BY c.next_retry_at NULLS LAST, e.started_at DESC
        LIMIT %(limit)s
        """,
        {"project_id": project_id, "limit": limit},
    ).fetchall()
    return [dict(r) for r in rows]


def unexpected_retries(
    conn: DbConnection, project_id: UUID, limit: int = MAX_ITEMS
) -> list[dict[str, Any]]:
    """Executions with at least one unexpected retry, newest first (one row per execution,
    naming its first such component)."""
    rows = conn.execute(
        """
        SELECT e.id AS execution_id, e.temporal_workflow_id, e.workflow_id,
               w.name AS workflow_name, e.status, e.started_at, u.node_id,
               u.component_name, u.retry_count, u.components, u.error_type, u.error_message
        FROM workflow_executions e
        JOIN LATERAL (
            SELECT c.node_id,
                   coalesce(c.component_name, c.activity_type, c.node_id) AS component_name,
                   c.retry_count, c.error_type, c.error_message,
                   count(*) OVER () AS components
            FROM component_executions c
            WHERE c.workflow_execution_id = e.id AND c.retry_count > 0
              AND NOT c.is_expected_retry
            ORDER BY c.started_at NULLS LAST, c.scheduled_event_id
            LIMIT 1
        ) u ON true
        LEFT JOIN workflows w ON w.id = e.workflow_id
        WHERE e.project_id = %(project_id)s
        ORDER BY e.started_at DESC
        LIMIT %(limit)s
        """,
        {"project_id": project_id, "limit": limit},
    ).fetchall()
    return [dict(r) for r in rows]


def failing_workflows(
    conn: DbConnection, project_id: UUID, limit: int = MAX_ITEMS
) -> list[dict[str, Any]]:
    """Workflows whose newest closed run failed (a failure status), with the time of their
    last success (None: never) and how many failed runs came after it."""
    rows = conn.execute(
        """
        SELECT w.id AS workflow_id, w.name AS workflow_name, l.id AS execution_id,
               l.status, l.closed_at, l.error_message, s.closed_at AS last_success_at,
               (SELECT count(*) FROM workflow_executions f
                WHERE f.workflow_id = w.id AND f.status = ANY(%(failures)s)
                  AND f.closed_at > coalesce(s.closed_at, '-infinity')) AS failures_since
        FROM workflows w
        JOIN LATERAL (
            SELECT e.id, e.status, e.closed_at, e.error_message
            FROM workflow_executions e
            WHERE e.workflow_id = w.id AND e.closed_at IS NOT NULL
            ORDER BY e.closed_at DESC
            LIMIT 1
        ) l ON true
        LEFT JOIN LATERAL (
            SELECT e.closed_at FROM workflow_executions e
            WHERE e.workflow_id = w.id AND e.status = 'completed'
            ORDER BY e.closed_at DESC
            LIMIT 1
        ) s ON true
        WHERE w.project_id = %(project_id)s AND l.status = ANY(%(failures)s)
        ORDER BY l.closed_at DESC
        LIMIT %(limit)s
        """,
        {"project_id": project_id, "failures": _FAILURES, "limit": limit},
    ).fetchall()
    return [dict(r) for r in rows]
