"""The reads the API needs beyond :mod:`wfmon.db`, each one statement or a few.

All run in the caller's unit of work (``Database.as_user``): row-level security decides
what exists, so a row of another user is simply absent (no existence oracle). Component
reads are paged so an execution with thousands of components costs one page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

import psycopg.errors

from wfmon.db import DbConnection

Row = dict[str, Any]


# -- projects and workflows -------------------------------------------------------------

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
    return conn.execute(_PROJECT + " ORDER BY p.name, p.id").fetchall()


def get_project(conn: DbConnection, project_id: UUID) -> Row | None:
    return conn.execute(_PROJECT + " WHERE p.id = %s", (project_id,)).fetchone()


def list_workflows(conn: DbConnection, project_id: UUID) -> list[Row]:
    return conn.execute(
        _WORKFLOW + " WHERE w.project_id = %s ORDER BY w.name, w.id", (project_id,)
    ).fetchall()


def get_workflow(conn: DbConnection, workflow_id: UUID) -> Row | None:
    return conn.execute(_WORKFLOW + " WHERE w.id = %s", (workflow_id,)).fetchone()


def workflow_name(conn: DbConnection, workflow_id: UUID | None) -> str | None:
    if workflow_id is None:
        return None
    row = conn.execute("SELECT name FROM workflows WHERE id = %s", (workflow_id,)).fetchone()
    return row["name"] if row else None


# -- executions ---------------------------------------------------------------------------


def component_counts_by_execution(
    conn: DbConnection, execution_ids: Sequence[UUID]
) -> dict[UUID, tuple[int, int]]:
    """(components, failed components) per execution id."""
    if not execution_ids:
        return {}
    rows = conn.execute(
        """
        SELECT workflow_execution_id AS id, count(*) AS n,
               count(*) FILTER (WHERE status IN ('failed', 'timed_out')) AS failed
        FROM component_executions WHERE workflow_execution_id = ANY(%s)
        GROUP BY workflow_execution_id
        """,
        (list(execution_ids),),
    ).fetchall()
    return {r["id"]: (r["n"], r["failed"]) for r in rows}


def component_status_counts(conn: DbConnection, execution_id: UUID) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(*) AS n FROM component_executions "
        "WHERE workflow_execution_id = %s GROUP BY status",
        (execution_id,),
    ).fetchall()
    return {r["status"]: r["n"] for r in rows}


_COMPONENT_COLUMNS: Final = """
    id, node_id, component_name, activity_type, kind, status, started_at, completed_at,
    duration_ms, input_data, output_data, error_message, error_type, retry_count,
    is_expected_retry, temporal_activity_id, temporal_attempt, retry_policy, retry_state,
    next_retry_at, scheduled_event_id
"""


def component_page(
    conn: DbConnection,
    execution_id: UUID,
    *,
    offset: int,
    limit: int,
    status: str | None = None,
) -> list[Row]:
    """Components in schedule order (the order :func:`wfmon.db.details` uses)."""
    return conn.execute(
        f"""
        SELECT {_COMPONENT_COLUMNS} FROM component_executions
        WHERE workflow_execution_id = %(id)s AND (%(status)s::text IS NULL OR status = %(status)s)
        ORDER BY started_at NULLS LAST, scheduled_event_id
        LIMIT %(limit)s OFFSET %(offset)s
        """,
        {"id": execution_id, "status": status, "limit": limit, "offset": offset},
    ).fetchall()


def last_status_by_node(conn: DbConnection, execution_id: UUID) -> dict[str, str]:
    """Each node's latest component row status (a node can run more than once)."""
    rows = conn.execute(
        """
        SELECT DISTINCT ON (node_id) node_id, status FROM component_executions
        WHERE workflow_execution_id = %s
        ORDER BY node_id, scheduled_event_id DESC
        """,
        (execution_id,),
    ).fetchall()
    return {r["node_id"]: r["status"] for r in rows}


def attempts_for(
    conn: DbConnection, execution: Row, activity_ids: Sequence[str]
) -> dict[str, list[Row]]:
    """Recorded attempts of these activities of one run, by activity id, oldest first."""
    if not activity_ids:
        return {}
    rows = conn.execute(
        """
        SELECT activity_id, attempt, started_at, ended_at, outcome, failure_type,
               failure_message
        FROM component_execution_attempts
        WHERE temporal_namespace = %s AND temporal_workflow_id = %s AND temporal_run_id = %s
          AND activity_id = ANY(%s)
        ORDER BY activity_id, attempt
        """,
        (
            execution["temporal_namespace"],
            execution["temporal_workflow_id"],
            execution["temporal_run_id"],
            list(set(activity_ids)),
        ),
    ).fetchall()
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r["activity_id"], []).append(r)
    return out


def history_proto(conn: DbConnection, execution_id: UUID) -> Row | None:
    """The stored history (protobuf bytes and/or JSON) of a visible execution."""
    return conn.execute(
        "SELECT id, temporal_workflow_id, temporal_run_id, temporal_history_proto, "
        "temporal_history_json IS NOT NULL AS has_json, history_sync_status "
        "FROM workflow_executions WHERE id = %s",
        (execution_id,),
    ).fetchone()


# -- statistics -----------------------------------------------------------------------

TREND_DAYS: Final = 30
#: Execution statuses counted as failures.
_FAILED: Final = "('failed', 'timed_out', 'terminated')"


def _scope(column: str) -> str:
    assert column in ("workflow_id", "project_id")
    return f"e.{column} = %(key)s"


def live_summary(conn: DbConnection, column: str, key: UUID) -> Row:
    row = conn.execute(
        f"""
        SELECT count(*) AS total_runs,
               count(*) FILTER (WHERE e.status IN {_FAILED}) AS failures,
               avg(e.duration_ms)::bigint AS avg_duration_ms,
               max(e.duration_ms) AS max_duration_ms,
               max(e.started_at) AS last_run_at
        FROM workflow_executions e
        WHERE {_scope(column)}
        """,
        {"key": key},
    ).fetchone()
    assert row is not None
    by_status = conn.execute(
        f"SELECT e.status, count(*) AS n FROM workflow_executions e WHERE {_scope(column)} "
        "GROUP BY e.status",
        {"key": key},
    ).fetchall()
    row["by_status"] = {r["status"]: r["n"] for r in by_status}
    return row


def top_components(conn: DbConnection, column: str, key: UUID, limit: int = 5) -> list[Row]:
    return conn.execute(
        f"""
        SELECT coalesce(c.component_name, c.activity_type, c.node_id) AS name, count(*) AS count,
               count(*) FILTER (WHERE c.status IN ('failed', 'timed_out')) AS failures
        FROM component_executions c JOIN workflow_executions e ON e.id = c.workflow_execution_id
        WHERE {_scope(column)}
        GROUP BY 1 ORDER BY count DESC, name LIMIT %(limit)s
        """,
        {"key": key, "limit": limit},
    ).fetchall()


def trend(conn: DbConnection, column: str, key: UUID, days: int = TREND_DAYS) -> list[Row]:
    return conn.execute(
        f"""
        SELECT (date_trunc('day', e.started_at AT TIME ZONE 'UTC'))::date AS day,
               count(*) AS runs,
               count(*) FILTER (WHERE e.status IN {_FAILED}) AS failures,
               avg(e.duration_ms)::bigint AS avg_duration_ms
        FROM workflow_executions e
        WHERE {_scope(column)} AND e.started_at >= now() - make_interval(days => %(days)s)
        GROUP BY 1 ORDER BY 1
        """,
        {"key": key, "days": days},
    ).fetchall()


def top_workflows(conn: DbConnection, project_id: UUID, limit: int = 5) -> list[Row]:
    return conn.execute(
        f"""
        SELECT e.workflow_id AS id, coalesce(w.name, e.workflow_type) AS name, count(*) AS count,
               count(*) FILTER (WHERE e.status IN {_FAILED}) AS failures
        FROM workflow_executions e LEFT JOIN workflows w ON w.id = e.workflow_id
        WHERE e.project_id = %s
        GROUP BY 1, 2 ORDER BY count DESC, name LIMIT %s
        """,
        (project_id, limit),
    ).fetchall()


def top_task_queues(conn: DbConnection, project_id: UUID, limit: int = 5) -> list[Row]:
    return conn.execute(
        f"""
        SELECT e.task_queue AS name, count(*) AS count,
               count(*) FILTER (WHERE e.status IN {_FAILED}) AS failures
        FROM workflow_executions e WHERE e.project_id = %s
        GROUP BY 1 ORDER BY count DESC, name LIMIT %s
        """,
        (project_id, limit),
    ).fetchall()


def longest_run(conn: DbConnection, project_id: UUID) -> Row | None:
    return conn.execute(
        """
        SELECT e.id AS execution_id, e.workflow_id, w.name AS workflow_name, e.duration_ms
        FROM workflow_executions e LEFT JOIN workflows w ON w.id = e.workflow_id
        WHERE e.project_id = %s AND e.duration_ms IS NOT NULL
        ORDER BY e.duration_ms DESC, e.id LIMIT 1
        """,
        (project_id,),
    ).fetchone()


def stored_trend(conn: DbConnection, column: str, key: UUID, days: int = TREND_DAYS) -> list[Row]:
    """Daily figures from ``workflow_daily_trends`` (built by dbt; day = close date), summed
    over the project's workflows for ``column = "project_id"``. Empty until built, or on a
    database without the table (the read runs in a savepoint, so the unit of work goes on)."""
    assert column in ("workflow_id", "project_id")
    try:
        with conn.transaction():
            return conn.execute(
                f"""
                SELECT t.day, sum(t.runs)::int AS runs, sum(t.failed_runs)::int AS failures,
                       (sum(t.avg_duration_ms * t.runs) / nullif(sum(t.runs), 0))::bigint
                           AS avg_duration_ms
                FROM workflow_daily_trends t
                WHERE t.{column} = %(key)s
                  AND t.day > (now() AT TIME ZONE 'UTC')::date - %(days)s
                GROUP BY t.day ORDER BY t.day
                """,
                {"key": key, "days": days},
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return []
