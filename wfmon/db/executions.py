"""Writing and reading executions: what sync, the worker and the history pages need.

Writers run as the system (``Database.as_system``); readers run as the user, whose
row-level security limits them to their own executions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Final
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from wfmon.db.bulk import column_list, recordset, rows_param
from wfmon.db.columns import COMPONENT_EXECUTIONS, WORKFLOW_EXECUTIONS, identifiers
from wfmon.db.database import DbConnection
from wfmon.db.rows import (
    AttemptRow,
    ComponentExecutionRow,
    ExecutionPage,
    ExecutionRow,
    ListedExecution,
)
from wfmon.model.vocabulary import DEFAULT_EXECUTION_SORT, ExecutionSort, ExecutionStatus

# -- workflow_executions ------------------------------------------------------------------

#: workflow_executions columns an ExecutionRow carries (checked against the column spec).
_EXECUTION_COLUMNS: Final = list(WORKFLOW_EXECUTIONS.types([f.name for f in fields(ExecutionRow)]))

_UPSERT_EXECUTION: Final = sql.SQL(
    """
INSERT INTO workflow_executions ({columns})
VALUES ({values})
ON CONFLICT (temporal_namespace, temporal_workflow_id, temporal_run_id) DO UPDATE SET
    -- What Temporal says about the run. Ownership (created_by, project, workflow) is kept:
    -- a row recorded by the user who started the run stays theirs.
    first_run_id = coalesce(EXCLUDED.first_run_id, workflow_executions.first_run_id),
    workflow_type = EXCLUDED.workflow_type,
    task_queue = EXCLUDED.task_queue,
    status = EXCLUDED.status,
    started_at = EXCLUDED.started_at,
    closed_at = EXCLUDED.closed_at,
    duration_ms = EXCLUDED.duration_ms,
    input = coalesce(EXCLUDED.input, workflow_executions.input),
    output = coalesce(EXCLUDED.output, workflow_executions.output),
    error_message = EXCLUDED.error_message,
    updated_at = now()
RETURNING id
"""
).format(
    columns=identifiers(_EXECUTION_COLUMNS),
    values=sql.SQL(", ").join(sql.Placeholder(c) for c in _EXECUTION_COLUMNS),
)


def upsert_execution(conn: DbConnection, row: ExecutionRow) -> UUID:
    """Insert or update the execution identified by its Temporal ids; return its id.

    Running it twice with the same row changes nothing the second time (besides
    ``updated_at``), so sync retries are safe.
    """
    params = {
        **row.__dict__,
        "input": None if row.input is None else Jsonb(row.input),
        "output": None if row.output is None else Jsonb(row.output),
    }
    result = conn.execute(_UPSERT_EXECUTION, params).fetchone()
    assert result is not None  # INSERT ... ON CONFLICT DO UPDATE ... RETURNING: one row
    execution_id: UUID = result["id"]
    return execution_id


def mark_history_synced(
    conn: DbConnection,
    execution_id: UUID,
    *,
    history_json: object | None,
    event_count: int,
    history_bytes: int,
    history_proto: bytes | None = None,
) -> None:
    """Record a successful history sync: the stored history, its size, status ``synced``;
    any earlier sync error and the sync lease are cleared."""
    conn.execute(
        """
        UPDATE workflow_executions
        SET temporal_history_json = %s, temporal_history_proto = %s,
            history_event_count = %s, history_bytes = %s,
            history_sync_status = 'synced', history_synced_at = now(),
            history_sync_error = NULL, sync_lease_owner = NULL, sync_lease_expires_at = NULL,
            updated_at = now()
        WHERE id = %s
        """,
        (
            None if history_json is None else Jsonb(history_json),
            history_proto,
            event_count,
            history_bytes,
            execution_id,
        ),
    )


def mark_history_sync_failed(conn: DbConnection, execution_id: UUID, error: str) -> None:
    """Record that syncing this execution failed, with a message saying why (the sync
    lease is released: the next request may try again)."""
    conn.execute(
        """
        UPDATE workflow_executions
        SET history_sync_status = 'failed', history_sync_error = %s,
            sync_lease_owner = NULL, sync_lease_expires_at = NULL, updated_at = now()
        WHERE id = %s
        """,
        (error, execution_id),
    )


# -- component_executions -----------------------------------------------------------------

#: component_executions columns a ComponentExecutionRow carries, with their SQL types.
_COMPONENT_COLUMNS: Final = COMPONENT_EXECUTIONS.types(
    [f.name for f in fields(ComponentExecutionRow)]
)

_INSERT_COMPONENTS: Final = sql.SQL(
    "INSERT INTO component_executions (workflow_execution_id, {cols}) "
    "SELECT %s, {r_cols} FROM {recordset}"
).format(
    cols=column_list(_COMPONENT_COLUMNS),
    r_cols=column_list(_COMPONENT_COLUMNS, "r"),
    recordset=recordset(_COMPONENT_COLUMNS),
)


def replace_component_executions(
    conn: DbConnection, execution_id: UUID, rows: Sequence[ComponentExecutionRow]
) -> int:
    """Make ``rows`` the execution's complete set of component rows; return how many.

    All or nothing: the delete and the single multi-row insert run in a savepoint, so if
    anything fails the previous rows are still there (even if the caller carries on with
    its transaction), and running it again with the same rows never duplicates them.
    """
    with conn.transaction():
        conn.execute(
            "DELETE FROM component_executions WHERE workflow_execution_id = %s", (execution_id,)
        )
        if rows:
            conn.execute(_INSERT_COMPONENTS, (execution_id, rows_param(rows)))
    return len(rows)


# -- component_execution_attempts -------------------------------------------------------

_ATTEMPT_COLUMNS: Final = {
    "temporal_namespace": "text",
    "temporal_workflow_id": "text",
    "temporal_run_id": "text",
    "activity_id": "text",
    "attempt": "integer",
    "activity_type": "text",
    "started_at": "timestamptz",
    "ended_at": "timestamptz",
    "outcome": "text",
    "failure_type": "text",
    "failure_message": "text",
    "failure_stack": "text",
    "worker_identity": "text",
}

_UPSERT_ATTEMPTS: Final = sql.SQL(
    """
    INSERT INTO component_execution_attempts AS a ({cols})
    SELECT {r_cols} FROM {recordset}
    ON CONFLICT (temporal_namespace, temporal_workflow_id, temporal_run_id, activity_id, attempt)
    DO UPDATE SET
        activity_type = coalesce(EXCLUDED.activity_type, a.activity_type),
        started_at = least(a.started_at, EXCLUDED.started_at),
        ended_at = coalesce(EXCLUDED.ended_at, a.ended_at),
        -- A late 'running' write (start recorded after the end) never undoes an outcome.
        outcome = CASE WHEN EXCLUDED.outcome = 'running' THEN a.outcome
                       ELSE EXCLUDED.outcome END,
        failure_type = coalesce(EXCLUDED.failure_type, a.failure_type),
        failure_message = coalesce(EXCLUDED.failure_message, a.failure_message),
        failure_stack = coalesce(EXCLUDED.failure_stack, a.failure_stack),
        worker_identity = coalesce(EXCLUDED.worker_identity, a.worker_identity),
        updated_at = now()
    """
).format(
    cols=column_list(_ATTEMPT_COLUMNS),
    r_cols=column_list(_ATTEMPT_COLUMNS, "r"),
    recordset=recordset(_ATTEMPT_COLUMNS),
)


def insert_attempts(conn: DbConnection, attempts: Sequence[AttemptRow]) -> None:
    """Record attempts in one statement; an attempt seen before is updated, never duplicated.

    When the same attempt appears twice in ``attempts`` the later entry wins (PostgreSQL
    refuses to update one row twice in a statement, so duplicates are merged here first).
    """
    latest: dict[tuple[str, str, str, str, int], AttemptRow] = {}
    for a in attempts:
        key = (
            a.temporal_namespace,
            a.temporal_workflow_id,
            a.temporal_run_id,
            a.activity_id,
            a.attempt,
        )
        latest[key] = a
    if latest:
        conn.execute(_UPSERT_ATTEMPTS, (rows_param(list(latest.values())),))


# -- reading ------------------------------------------------------------------------------

#: The ORDER BY of each sort order; each ends with id so that pages are stable when times tie.
_SORTS: Final[Mapping[ExecutionSort, sql.SQL]] = {
    ExecutionSort.STARTED_AT_DESC: sql.SQL("started_at DESC, id DESC"),
    ExecutionSort.STARTED_AT_ASC: sql.SQL("started_at ASC, id ASC"),
    ExecutionSort.CLOSED_AT_DESC: sql.SQL("closed_at DESC NULLS FIRST, id DESC"),
    ExecutionSort.DURATION_DESC: sql.SQL("duration_ms DESC NULLS LAST, id DESC"),
}
assert set(_SORTS) == set(ExecutionSort), "an ORDER BY per ExecutionSort member"

MAX_PAGE_SIZE: Final = 500

#: What a workflow's execution list shows: the fields of ListedExecution.
_LISTED_COLUMNS: Final = identifiers(
    list(WORKFLOW_EXECUTIONS.types([f.name for f in fields(ListedExecution)]))
)


_LISTED_WHERE: Final = sql.SQL(
    "workflow_id = %(workflow)s AND (%(status)s::text IS NULL OR status = %(status)s)"
)
# Rendered once (composing and quoting the column list cost more than the statement's
# parameters); bytes, which psycopg runs as they are.
_COUNT_EXECUTIONS: Final = (
    sql.SQL("SELECT count(*) AS n FROM workflow_executions WHERE {}")
    .format(_LISTED_WHERE)
    .as_bytes()
)
_PAGE_EXECUTIONS: Final[Mapping[ExecutionSort, bytes]] = {
    sort: sql.SQL(
        """
        SELECT {columns} FROM workflow_executions WHERE {where}
        ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s
        """
    )
    .format(columns=_LISTED_COLUMNS, where=_LISTED_WHERE, order=order)
    .as_bytes()
    for sort, order in _SORTS.items()
}


def page_executions(
    conn: DbConnection,
    workflow_id: UUID,
    *,
    status: ExecutionStatus | None = None,
    page: int = 1,
    page_size: int = 20,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
) -> ExecutionPage:
    """One page (1-based) of a workflow's executions the caller may see, plus the total."""
    if page < 1:
        raise ValueError(f"page must be 1 or more (got {page})")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})")
    if sort not in _SORTS:
        raise ValueError(f"sort must be one of {', '.join(_SORTS)} (got {sort!r})")
    params = {
        "workflow": workflow_id,
        "status": status,
        "limit": page_size,
        "offset": (page - 1) * page_size,
    }
    count = conn.execute(_COUNT_EXECUTIONS, params).fetchone()
    rows = conn.execute(_PAGE_EXECUTIONS[sort], params).fetchall()
    return ExecutionPage(
        items=[ListedExecution(**r) for r in rows],
        total=count["n"] if count else 0,
        page=page,
        page_size=page_size,
    )
