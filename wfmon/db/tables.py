"""Reading whole tables for notebooks and Dagster's IO manager.

Each readable table maps to one SELECT. The two synced tables read the ``data`` columns
of :mod:`wfmon.db.columns` (histories and payloads are left out: they are large and have
their own readers); component rows come with the columns of their execution that
notebooks group by. ``window`` restricts a read to the rows whose execution's
``closed_at`` lies in ``[start, end)`` (the partitions' UTC days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg import sql

from wfmon.db.columns import COMPONENT_EXECUTIONS, WORKFLOW_EXECUTIONS, Column
from wfmon.db.database import DbConnection

#: Columns of its execution a component row is read with (not columns of the table).
EXECUTION_OF_COMPONENT: Final = (
    Column("workflow_id", "uuid", "The execution's wfmon workflow (workflows.id)."),
    Column("project_id", "uuid", "The execution's project (projects.id)."),
    Column("execution_closed_at", "timestamptz", "Close of the execution (the partition)."),
    Column("execution_status", "text", "Status of the execution."),
)


@dataclass(frozen=True)
class TableRead:
    """How one table is read: a SELECT with an optional close-time window."""

    select: sql.Composable
    #: Column holding the close time the window applies to (None: not windowed).
    window_column: sql.Composable | None
    order_by: sql.Composable
    #: What the read returns, described (None: every column of a table dbt builds).
    columns: tuple[Column, ...] | None = None


_COMPONENT_COLUMNS: Final = COMPONENT_EXECUTIONS.with_roles({"data"})

TABLE_READS: Final[dict[str, TableRead]] = {
    "workflow_executions": TableRead(
        select=sql.SQL("SELECT {} FROM workflow_executions e").format(
            WORKFLOW_EXECUTIONS.select_list({"data"}, "e")
        ),
        window_column=sql.Identifier("e", "closed_at"),
        order_by=sql.SQL("e.closed_at, e.temporal_workflow_id, e.temporal_run_id"),
        columns=WORKFLOW_EXECUTIONS.with_roles({"data"}),
    ),
    "component_executions": TableRead(
        select=sql.SQL(
            "SELECT {}, e.workflow_id, e.project_id, e.closed_at AS execution_closed_at, "
            "e.status AS execution_status "
            "FROM component_executions c JOIN workflow_executions e "
            "ON e.id = c.workflow_execution_id"
        ).format(COMPONENT_EXECUTIONS.select_list({"data"}, "c")),
        window_column=sql.Identifier("e", "closed_at"),
        order_by=sql.SQL("e.closed_at, c.workflow_execution_id, c.scheduled_event_id"),
        columns=_COMPONENT_COLUMNS + EXECUTION_OF_COMPONENT,
    ),
    "workflow_statistics": TableRead(
        sql.SQL("SELECT * FROM workflow_statistics"), None, sql.SQL("workflow_id")
    ),
    "project_statistics": TableRead(
        sql.SQL("SELECT * FROM project_statistics"), None, sql.SQL("project_id")
    ),
    "workflow_daily_trends": TableRead(
        sql.SQL("SELECT * FROM workflow_daily_trends"), None, sql.SQL("day, workflow_id")
    ),
    "component_daily_trends": TableRead(
        sql.SQL("SELECT * FROM component_daily_trends"),
        None,
        sql.SQL("day, workflow_id, component_name"),
    ),
}


def read_table(
    conn: DbConnection, table: str, window: tuple[datetime, datetime] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """(column names, rows as lists) of ``table`` visible in ``conn``'s unit of work.

    ``window`` is ``[start, end)`` on close time (windowed tables only; ignored for the
    others). Raises :class:`KeyError` for a table that is not readable here.
    """
    query = TABLE_READS[table]
    statement: sql.Composable = query.select
    params: tuple[object, ...] = ()
    if window is not None and query.window_column is not None:
        statement = sql.SQL("{} WHERE {} >= %s AND {} < %s").format(
            statement, query.window_column, query.window_column
        )
        params = window
    statement = sql.SQL("{} ORDER BY {}").format(statement, query.order_by)
    cur = conn.execute(statement, params)
    columns = [d.name for d in cur.description or []]
    return columns, [list(row.values()) for row in cur.fetchall()]
