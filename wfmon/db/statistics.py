"""Statistics: the tables dbt builds (users only read them), the same figures computed
live from the executions, and the checks that the two agree."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final, Literal
from uuid import UUID

import psycopg.errors
from psycopg import sql

from wfmon.db.database import DbConnection
from wfmon.db.rows import ProjectStatistics, WorkflowStatistics
from wfmon.db.vocabulary import FAILED
from wfmon.model.vocabulary import ComponentStatus, ExecutionStatus


def _select(
    cls: type[WorkflowStatistics] | type[ProjectStatistics], table: str, key: str
) -> sql.Composed:
    """SELECT of exactly the dataclass's fields, so rows map onto it with ``cls(**row)``."""
    columns = sql.SQL(", ").join([sql.Identifier(f.name) for f in fields(cls)])
    return sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
        columns, sql.Identifier(table), sql.Identifier(key)
    )


_WORKFLOW = _select(WorkflowStatistics, "workflow_statistics", "workflow_id")
_PROJECT = _select(ProjectStatistics, "project_statistics", "project_id")


def get_workflow_statistics(conn: DbConnection, workflow_id: UUID) -> WorkflowStatistics | None:
    """The workflow's statistics, or None when there are none yet or the caller may not see them
    (a user sees those of their own and of public workflows)."""
    row = conn.execute(_WORKFLOW, (workflow_id,)).fetchone()
    return WorkflowStatistics(**row) if row else None


def get_project_statistics(conn: DbConnection, project_id: UUID) -> ProjectStatistics | None:
    """The project's statistics, or None when there are none yet or it is not the caller's."""
    row = conn.execute(_PROJECT, (project_id,)).fetchone()
    return ProjectStatistics(**row) if row else None


# -- live figures, computed from the executions the caller may see ------------------------

Row = dict[str, Any]
#: Which executions a figure covers: a workflow's or a project's.
Scope = Literal["workflow_id", "project_id"]

TREND_DAYS: Final = 30


def _scope(column: Scope) -> str:
    assert column in ("workflow_id", "project_id")
    return f"e.{column} = %(key)s"


def live_summary(conn: DbConnection, column: Scope, key: UUID) -> Row:
    """Runs, failures, average / longest duration, last start and runs by status of the
    workflow's (``column="workflow_id"``) or project's executions."""
    row = conn.execute(
        f"""
        SELECT count(*) AS total_runs,
               count(*) FILTER (WHERE e.status IN {FAILED}) AS failures,
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


def top_components(conn: DbConnection, column: Scope, key: UUID, limit: int = 5) -> list[Row]:
    """The most run components (name, runs, failures), most runs first."""
    return conn.execute(
        f"""
        SELECT coalesce(c.component_name, c.activity_type, c.node_id) AS name, count(*) AS count,
               count(*) FILTER (WHERE c.status IN {FAILED}) AS failures
        FROM component_executions c JOIN workflow_executions e ON e.id = c.workflow_execution_id
        WHERE {_scope(column)}
        GROUP BY 1 ORDER BY count DESC, name LIMIT %(limit)s
        """,
        {"key": key, "limit": limit},
    ).fetchall()


def trend(conn: DbConnection, column: Scope, key: UUID, days: int = TREND_DAYS) -> list[Row]:
    """Runs, failures and average duration per UTC start day over the last ``days``."""
    return conn.execute(
        f"""
        SELECT (date_trunc('day', e.started_at AT TIME ZONE 'UTC'))::date AS day,
               count(*) AS runs,
               count(*) FILTER (WHERE e.status IN {FAILED}) AS failures,
               avg(e.duration_ms)::bigint AS avg_duration_ms
        FROM workflow_executions e
        WHERE {_scope(column)} AND e.started_at >= now() - make_interval(days => %(days)s)
        GROUP BY 1 ORDER BY 1
        """,
        {"key": key, "days": days},
    ).fetchall()


def top_workflows(conn: DbConnection, project_id: UUID, limit: int = 5) -> list[Row]:
    """The project's most run workflows (id, name, runs, failures), most runs first."""
    return conn.execute(
        f"""
        SELECT e.workflow_id AS id, coalesce(w.name, e.workflow_type) AS name, count(*) AS count,
               count(*) FILTER (WHERE e.status IN {FAILED}) AS failures
        FROM workflow_executions e LEFT JOIN workflows w ON w.id = e.workflow_id
        WHERE e.project_id = %s
        GROUP BY 1, 2 ORDER BY count DESC, name LIMIT %s
        """,
        (project_id, limit),
    ).fetchall()


def top_task_queues(conn: DbConnection, project_id: UUID, limit: int = 5) -> list[Row]:
    """The project's busiest task queues (name, runs, failures), most runs first."""
    return conn.execute(
        f"""
        SELECT e.task_queue AS name, count(*) AS count,
               count(*) FILTER (WHERE e.status IN {FAILED}) AS failures
        FROM workflow_executions e WHERE e.project_id = %s
        GROUP BY 1 ORDER BY count DESC, name LIMIT %s
        """,
        (project_id, limit),
    ).fetchall()


def longest_run(conn: DbConnection, project_id: UUID) -> Row | None:
    """The project's longest finished execution (id, workflow, its name, duration)."""
    return conn.execute(
        """
        SELECT e.id AS execution_id, e.workflow_id, w.name AS workflow_name, e.duration_ms
        FROM workflow_executions e LEFT JOIN workflows w ON w.id = e.workflow_id
        WHERE e.project_id = %s AND e.duration_ms IS NOT NULL
        ORDER BY e.duration_ms DESC, e.id LIMIT 1
        """,
        (project_id,),
    ).fetchone()


def stored_trend(conn: DbConnection, column: Scope, key: UUID, days: int = TREND_DAYS) -> list[Row]:
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


# -- do the tables agree with the executions? ---------------------------------------------


def workflow_statistics_mismatches(conn: DbConnection) -> list[Row]:
    """Workflows with executions whose statistics row is missing or whose run counts
    differ from the executions' (workflows with executions changed after the row's refresh
    are skipped: the next refresh covers them). Run as the system."""
    return conn.execute(
        f"""
        WITH counts AS (
            SELECT workflow_id, count(*) AS total,
                   count(*) FILTER (WHERE status = '{ExecutionStatus.COMPLETED}') AS ok,
                   count(*) FILTER (WHERE status IN {FAILED}) AS failed,
                   max(updated_at) AS changed_at
            FROM workflow_executions WHERE workflow_id IS NOT NULL GROUP BY workflow_id
        )
        SELECT c.workflow_id::text AS workflow_id, c.total, s.total_runs,
               c.ok, s.successful_runs, c.failed, s.failed_runs
        FROM counts c LEFT JOIN workflow_statistics s ON s.workflow_id = c.workflow_id
        WHERE c.changed_at <= coalesce(
                  s.updated_at, (SELECT max(updated_at) FROM workflow_statistics))
          AND (s.workflow_id IS NULL OR c.total <> s.total_runs
               OR c.ok <> s.successful_runs OR c.failed <> s.failed_runs)
        """
    ).fetchall()


def project_statistics_mismatches(conn: DbConnection) -> list[Row]:
    """Projects with executions whose statistics row is missing or whose execution and
    failure counts differ from the executions' (projects changed after the refresh are
    skipped). Run as the system."""
    return conn.execute(
        f"""
        WITH counts AS (
            SELECT project_id, count(*) AS total,
                   count(*) FILTER (WHERE status IN {FAILED}) AS failed,
                   max(updated_at) AS changed_at
            FROM workflow_executions GROUP BY project_id
        )
        SELECT c.project_id::text AS project_id, c.total, s.total_executions,
               c.failed, s.total_failures
        FROM counts c LEFT JOIN project_statistics s ON s.project_id = c.project_id
        WHERE c.changed_at <= coalesce(
                  s.updated_at, (SELECT max(updated_at) FROM project_statistics))
          AND (s.project_id IS NULL OR c.total <> s.total_executions
               OR c.failed <> s.total_failures)
        """
    ).fetchall()


def count_statistics(conn: DbConnection) -> Row:
    """How many workflow and project statistics rows exist (``workflows``, ``projects``)
    and the runs they count (``runs``)."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM workflow_statistics) AS workflows, "
        "(SELECT count(*) FROM project_statistics) AS projects, "
        "(SELECT coalesce(sum(total_runs), 0) FROM workflow_statistics) AS runs"
    ).fetchone()
    assert row is not None
    return row


def count_component_outcomes(conn: DbConnection) -> Row:
    """Every component row visible in ``conn``: how many (``components``), with expected
    retries (``expected``), with unexpected retries (``unexpected``), failed (``failed``)."""
    row = conn.execute(
        f"""
        SELECT count(*) AS components,
               count(*) FILTER (WHERE retry_count > 0 AND is_expected_retry) AS expected,
               count(*) FILTER (WHERE retry_count > 0 AND NOT is_expected_retry) AS unexpected,
               count(*) FILTER (WHERE status = '{ComponentStatus.FAILED}') AS failed
        FROM component_executions
        """
    ).fetchone()
    assert row is not None
    return row
