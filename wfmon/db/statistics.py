"""Reading the statistics tables (built by dbt / the system; users only read them)."""

from __future__ import annotations

from dataclasses import fields
from uuid import UUID

from psycopg import sql

from wfmon.db.database import DbConnection
from wfmon.db.rows import ProjectStatistics, WorkflowStatistics


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
