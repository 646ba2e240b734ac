"""Reading one execution in full: its row, its component rows and every recorded attempt.

Run these in the caller's unit of work (``as_user``): row-level security decides what is
visible, so another user's execution simply is not found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from uuid import UUID

import orjson
from psycopg import Cursor, sql
from psycopg.rows import DictRow
from psycopg.types.json import JsonbLoader, JsonLoader

from wfmon.db.columns import COMPONENT_EXECUTIONS, READABLE, WORKFLOW_EXECUTIONS
from wfmon.db.database import DbConnection
from wfmon.db.vocabulary import FAILED

Row = dict[str, Any]

# -- JSON columns, decoded by orjson ------------------------------------------------------
#
# A page of 100 components carries ~300 JSON values (input, output, retry policy);
# json.loads of them was the largest single cost of reading a page. orjson decodes the
# same text to the same values ~5x faster, except that it turns integers beyond 64 bits
# into floats (and refuses what json.loads accepts: lone surrogates, 1e400): text that may
# hold such an integer (a run of 19+ digits) and text orjson refuses go to json.loads.

_LONG_DIGIT_RUN: Final = re.compile(rb"[0-9]{19}")


def _loads(data: str | bytes) -> Any:
    """``json.loads(data)``, computed by orjson where that gives the same value."""
    if isinstance(data, str):  # psycopg passes bytes; str only to match its signature
        return json.loads(data)
    if not _LONG_DIGIT_RUN.search(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


class _JsonbLoader(JsonbLoader):
    _loads = staticmethod(_loads)


class _JsonLoader(JsonLoader):
    _loads = staticmethod(_loads)


def _json_cursor(conn: DbConnection) -> Cursor[DictRow]:
    """A cursor of ``conn`` that decodes ``json``/``jsonb`` (text format) with
    :func:`_loads`; the connection's own loaders stay as they are."""
    cur = conn.cursor()
    cur.adapters.register_loader("jsonb", _JsonbLoader)
    cur.adapters.register_loader("json", _JsonLoader)
    return cur


#: Execution columns a reader gets (the history is fetched on its own: it can be MBs).
_EXECUTION_COLUMNS: Final = sql.SQL(
    """{columns},
    (SELECT max(a.updated_at) FROM component_execution_attempts a
     WHERE a.temporal_namespace = e.temporal_namespace
       AND a.temporal_workflow_id = e.temporal_workflow_id
       AND a.temporal_run_id = e.temporal_run_id) AS attempts_updated_at"""
).format(columns=WORKFLOW_EXECUTIONS.select_list(READABLE))


# The statements a details page runs are rendered once, to bytes (psycopg runs them as
# they are): composing and quoting their column lists on every call cost more than the
# statements' parameters.
_GET_EXECUTION: Final = (
    sql.SQL("SELECT {} FROM workflow_executions e WHERE id = %s")
    .format(_EXECUTION_COLUMNS)
    .as_bytes()
)


def get_execution(conn: DbConnection, execution_id: UUID) -> dict[str, Any] | None:
    """The execution row (no history JSON), or None when missing or not visible."""
    with _json_cursor(conn) as cur:
        return cur.execute(_GET_EXECUTION, (execution_id,)).fetchone()


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
        sql.SQL(
            "SELECT {} FROM workflow_executions e "
            "WHERE temporal_namespace = %s AND temporal_workflow_id = %s AND temporal_run_id = %s"
        ).format(_EXECUTION_COLUMNS),
        (namespace, workflow_id, run_id),
    ).fetchone()


def list_component_executions(conn: DbConnection, execution_id: UUID) -> list[dict[str, Any]]:
    """Component rows of an execution (every column) in schedule order."""
    return conn.execute(
        sql.SQL(
            "SELECT {} FROM component_executions WHERE workflow_execution_id = %s "
            "ORDER BY started_at NULLS LAST, scheduled_event_id"
        ).format(COMPONENT_EXECUTIONS.select_list()),
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


def get_history_proto(conn: DbConnection, execution_id: UUID) -> Row | None:
    """The stored history (protobuf bytes, and whether JSON is stored) of a visible
    execution, with its Temporal ids and sync status; None when missing or not visible."""
    return conn.execute(
        "SELECT id, temporal_workflow_id, temporal_run_id, temporal_history_proto, "
        "temporal_history_json IS NOT NULL AS has_json, history_sync_status "
        "FROM workflow_executions WHERE id = %s",
        (execution_id,),
    ).fetchone()


# -- component rows, paged ----------------------------------------------------------------
#
# An execution with thousands of components costs one page, not all of them.


def count_components_by_execution(
    conn: DbConnection, execution_ids: Sequence[UUID]
) -> dict[UUID, tuple[int, int]]:
    """(components, failed components) per execution id (executions without components
    are absent)."""
    if not execution_ids:
        return {}
    rows = conn.execute(
        f"""
        SELECT workflow_execution_id AS id, count(*) AS n,
               count(*) FILTER (WHERE status IN {FAILED}) AS failed
        FROM component_executions WHERE workflow_execution_id = ANY(%s)
        GROUP BY workflow_execution_id
        """,
        (list(execution_ids),),
    ).fetchall()
    return {r["id"]: (r["n"], r["failed"]) for r in rows}


def count_components_by_status(conn: DbConnection, execution_id: UUID) -> dict[str, int]:
    """How many component rows of the execution have each status."""
    rows = conn.execute(
        "SELECT status, count(*) AS n FROM component_executions "
        "WHERE workflow_execution_id = %s GROUP BY status",
        (execution_id,),
    ).fetchall()
    return {r["status"]: r["n"] for r in rows}


_PAGE_COMPONENTS: Final = (
    sql.SQL(
        """
    SELECT {columns} FROM component_executions
    WHERE workflow_execution_id = %(id)s AND (%(status)s::text IS NULL OR status = %(status)s)
    ORDER BY started_at NULLS LAST, scheduled_event_id
    LIMIT %(limit)s OFFSET %(offset)s
    """
    )
    .format(columns=COMPONENT_EXECUTIONS.select_list(READABLE))
    .as_bytes()
)


def page_component_executions(
    conn: DbConnection,
    execution_id: UUID,
    *,
    offset: int,
    limit: int,
    status: str | None = None,
) -> list[Row]:
    """Components (readable columns) in schedule order, the order
    :func:`list_component_executions` uses; only those with ``status`` when given."""
    with _json_cursor(conn) as cur:
        return cur.execute(
            _PAGE_COMPONENTS,
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


def list_activity_attempts(
    conn: DbConnection, execution: Mapping[str, Any], activity_ids: Sequence[str]
) -> dict[str, list[Row]]:
    """Recorded attempts of these activities of one run (``execution`` carries its
    Temporal ids), by activity id, oldest first."""
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
