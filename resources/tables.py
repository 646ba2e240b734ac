"""Reading wfmon's tables as pandas DataFrames (what notebooks get from ``load_asset_value``).

Each readable asset maps to one SELECT. Partitioned assets read the rows whose
``closed_at`` falls in the partition's time window ``[start, end)`` (UTC days), the same
window the sync asset discovers and the same day dbt's trends use. Histories and payloads
(``temporal_history_*``, ``input``/``output``) are left out: they are large and have their
own readers in ``wfmon``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import pandas as pd
from psycopg import sql

from wfmon.db.database import DbConnection

_EXECUTION_COLUMNS: Final = [
    "id",
    "temporal_namespace",
    "temporal_workflow_id",
    "temporal_run_id",
    "workflow_type",
    "task_queue",
    "status",
    "started_at",
    "closed_at",
    "duration_ms",
    "created_by",
    "project_id",
    "workflow_id",
    "workflow_version",
    "error_message",
    "history_sync_status",
    "history_synced_at",
    "history_sync_error",
    "history_event_count",
    "history_bytes",
]

_COMPONENT_COLUMNS: Final = [
    "id",
    "workflow_execution_id",
    "node_id",
    "component_id",
    "component_name",
    "kind",
    "activity_type",
    "status",
    "started_at",
    "completed_at",
    "duration_ms",
    "error_type",
    "error_message",
    "retry_count",
    "is_expected_retry",
    "temporal_attempt",
    "retry_state",
]


@dataclass(frozen=True)
class TableQuery:
    """How one asset is read: a SELECT with an optional close-time window."""

    select: sql.Composable
    #: Column holding the close time the partition window applies to (None: unpartitioned).
    window_column: sql.Composable | None
    order_by: sql.Composable


def _cols(alias: str, names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)


_EXECUTIONS = TableQuery(
    select=sql.SQL("SELECT {} FROM workflow_executions e").format(_cols("e", _EXECUTION_COLUMNS)),
    window_column=sql.Identifier("e", "closed_at"),
    order_by=sql.SQL("e.closed_at, e.temporal_workflow_id, e.temporal_run_id"),
)

#: Asset key (its last path component) -> how to read it.
TABLE_QUERIES: Final[dict[str, TableQuery]] = {
    "discovered_executions": _EXECUTIONS,
    "workflow_executions": _EXECUTIONS,
    "component_executions": TableQuery(
        select=sql.SQL(
            "SELECT {}, e.workflow_id, e.project_id, e.closed_at AS execution_closed_at, "
            "e.status AS execution_status "
            "FROM component_executions c JOIN workflow_executions e "
            "ON e.id = c.workflow_execution_id"
        ).format(_cols("c", _COMPONENT_COLUMNS)),
        window_column=sql.Identifier("e", "closed_at"),
        order_by=sql.SQL("e.closed_at, c.workflow_execution_id, c.scheduled_event_id"),
    ),
    "workflow_statistics": TableQuery(
        sql.SQL("SELECT * FROM workflow_statistics"), None, sql.SQL("workflow_id")
    ),
    "project_statistics": TableQuery(
        sql.SQL("SELECT * FROM project_statistics"), None, sql.SQL("project_id")
    ),
    "workflow_daily_trends": TableQuery(
        sql.SQL("SELECT * FROM workflow_daily_trends"), None, sql.SQL("day, workflow_id")
    ),
    "component_daily_trends": TableQuery(
        sql.SQL("SELECT * FROM component_daily_trends"),
        None,
        sql.SQL("day, workflow_id, component_name"),
    ),
}


def read_table(
    conn: DbConnection,
    name: str,
    window: tuple[datetime, datetime] | None = None,
) -> pd.DataFrame:
    """The rows of asset ``name`` visible in ``conn``'s unit of work, as a DataFrame.

    ``window`` is ``[start, end)`` on close time (partitioned assets only). UUID columns
    become strings so that they group and plot directly. Raises :class:`KeyError` for an
    asset that is not a wfmon table.
    """
    try:
        query = TABLE_QUERIES[name]
    except KeyError:
        raise KeyError(
            f"{name!r} is not a wfmon table asset (readable: {', '.join(sorted(TABLE_QUERIES))})"
        ) from None
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
    frame = pd.DataFrame([list(row.values()) for row in cur.fetchall()], columns=columns)
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, uuid.UUID)).any():
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame
