"""Reading executions, component executions or attempts for export, in batches.

Exports read with :func:`iter_export_copy`: ``COPY (SELECT ...) TO STDOUT`` in the
caller's unit of work, PostgreSQL formatting the rows (see :data:`CopyFormat`).
:func:`iter_export_batches` (row tuples from a server-side cursor) is the reference the
tests and the benchmark compare with.

One server-side cursor (``DECLARE ... CURSOR``) per export, opened in the caller's unit of
work (``Database.as_user``), so row-level security decides what is exported exactly as it
decides what the history list shows; rows come ``batch_size`` at a time and nothing holds
more than one batch. There is no row cap.

The columns of each kind are defined here once, from :mod:`wfmon.db.columns` (the synced
tables' spec) and :data:`COMPONENT_EXECUTION_ATTEMPTS` below: the SELECT lists, the
writers' types (:mod:`wfmon.export.schema`) and the user guide's tables
(docs/user-guide/export.md, checked by tests/export/test_schema.py) all come from
:data:`KINDS`. Exports carry ``data`` and ``payload`` columns; histories and the sync's
bookkeeping are left out.

UUIDs and JSON are read as text (``::text``): that is what every format writes, and it
spares parsing a value only to print it again. JSON columns are PostgreSQL's jsonb text
(valid JSON on one line). Timestamps come as UTC datetimes (the unit of work's
``TimeZone`` is set to UTC).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

from psycopg import sql
from psycopg.abc import Buffer
from psycopg.rows import tuple_row

from wfmon.db.columns import COMPONENT_EXECUTIONS, READABLE, WORKFLOW_EXECUTIONS, Column, Table
from wfmon.db.database import DbConnection
from wfmon.db.search import Params, matching_executions, term_lookups
from wfmon.db.tables import EXECUTION_OF_COMPONENT
from wfmon.search.query import SearchQuery

ExportKind = Literal["executions", "components", "attempts"]
EXPORT_KINDS: Final[tuple[ExportKind, ...]] = ("executions", "components", "attempts")

#: Rows per fetch from the server-side cursor (and per row group / chunk written).
DEFAULT_BATCH_SIZE: Final = 10_000

#: ``component_execution_attempts`` (migrations/0002_schema.sql): one row per attempt of an
#: activity, written by the worker's attempt recorder. tests/export/test_schema.py compares
#: it with the migrated table.
COMPONENT_EXECUTION_ATTEMPTS: Final = Table(
    "component_execution_attempts",
    (
        Column("id", "uuid", "Row id."),
        Column("temporal_namespace", "text", "Temporal namespace of the execution."),
        Column("temporal_workflow_id", "text", "Temporal workflow id of the execution."),
        Column("temporal_run_id", "text", "Temporal run id of the execution."),
        Column("activity_id", "text", "Activity id (the node id for builder workflows)."),
        Column("attempt", "integer", "Attempt number (1 for the first)."),
        Column("activity_type", "text", "Temporal activity type (the component)."),
        Column("started_at", "timestamptz", "When the attempt started (worker clock)."),
        Column("ended_at", "timestamptz", "When the attempt ended, once it has."),
        Column("outcome", "text", "running, completed, failed, canceled or timed_out."),
        Column("failure_type", "text", "Failure type, when the attempt failed."),
        Column("failure_message", "text", "Failure message, when the attempt failed."),
        Column("failure_stack", "text", "Stack trace of the failure, when there is one."),
        Column("worker_identity", "text", "Identity of the worker that ran the attempt."),
        Column("created_at", "timestamptz", "When the row was written.", "bookkeeping"),
        Column("updated_at", "timestamptz", "When the row was last written.", "bookkeeping"),
    ),
)

#: Columns of its execution an attempt is exported with (not columns of the table).
EXECUTION_OF_ATTEMPT: Final = (
    Column("workflow_execution_id", "uuid", "The execution (workflow_executions.id)."),
    *EXECUTION_OF_COMPONENT,
)

#: Where the execution columns a component or attempt row carries come from.
_EXECUTION_EXPRESSIONS: Final = {
    "workflow_execution_id": sql.SQL("e.id"),
    "workflow_id": sql.SQL("e.workflow_id"),
    "project_id": sql.SQL("e.project_id"),
    "execution_closed_at": sql.SQL("e.closed_at"),
    "execution_status": sql.SQL("e.status"),
}


@dataclass(frozen=True)
class KindSpec:
    """One export kind: its columns (in output order) and where its rows come from."""

    kind: ExportKind
    description: str
    #: Columns of the kind's own table (read as ``alias.name``).
    own: tuple[Column, ...]
    alias: str
    #: Columns of the row's execution (see :data:`_EXECUTION_EXPRESSIONS`).
    context: tuple[Column, ...]
    source: sql.Composable
    order_by: sql.Composable

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.own + self.context

    def select_list(self) -> sql.Composable:
        parts: list[sql.Composable] = []
        for c in self.own:
            parts.append(_read_as(sql.Identifier(self.alias, c.name), c))
        for c in self.context:
            parts.append(_read_as(_EXECUTION_EXPRESSIONS[c.name], c))
        return sql.SQL(", ").join(parts)


def _read_as(expr: sql.Composable, column: Column) -> sql.Composable:
    """``expr`` as the export reads it: UUIDs and JSON as text, named after the column."""
    if column.sql_type in ("uuid", "jsonb"):
        expr = sql.SQL("{}::text").format(expr)
    return sql.SQL("{} AS {}").format(expr, sql.Identifier(column.name))


KINDS: Final[dict[ExportKind, KindSpec]] = {
    "executions": KindSpec(
        kind="executions",
        description="One row per workflow execution (a Temporal workflow run).",
        own=WORKFLOW_EXECUTIONS.with_roles(READABLE),
        alias="e",
        context=(),
        source=sql.SQL("workflow_executions e"),
        order_by=sql.SQL("e.started_at, e.id"),
    ),
    "components": KindSpec(
        kind="components",
        description="One row per component (node) run of an execution, all attempts included.",
        own=COMPONENT_EXECUTIONS.with_roles(READABLE),
        alias="c",
        context=EXECUTION_OF_COMPONENT,
        source=sql.SQL(
            "workflow_executions e JOIN component_executions c ON c.workflow_execution_id = e.id"
        ),
        order_by=sql.SQL("e.started_at, e.id, c.scheduled_event_id"),
    ),
    "attempts": KindSpec(
        kind="attempts",
        description="One row per attempt of a component run, as the worker recorded it.",
        own=COMPONENT_EXECUTION_ATTEMPTS.with_roles(READABLE),
        alias="a",
        context=EXECUTION_OF_ATTEMPT,
        source=sql.SQL(
            "workflow_executions e JOIN component_execution_attempts a "
            "ON a.temporal_namespace = e.temporal_namespace "
            "AND a.temporal_workflow_id = e.temporal_workflow_id "
            "AND a.temporal_run_id = e.temporal_run_id"
        ),
        order_by=sql.SQL("e.started_at, e.id, a.activity_id, a.attempt"),
    ),
}


@dataclass(frozen=True)
class ExportFilter:
    """Which rows: those whose EXECUTION matches every given field (None: any).

    ``status`` is the execution's status (the history list's filter) and ``since`` /
    ``until`` bound the execution's start: ``since <= started_at < until``. ``search``:
    only the executions a search matches (the search page's results, see
    :mod:`wfmon.db.search`).
    """

    project_id: UUID | None = None
    workflow_id: UUID | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: SearchQuery | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must carry a time zone (got {value.isoformat()})")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(
                f"since ({self.since.isoformat()}) must be before until ({self.until.isoformat()})"
            )


def search_terms(conn: DbConnection, f: ExportFilter) -> list[list[int]]:
    """The term hashes of ``f``'s search (one round trip; none without a search)."""
    return term_lookups(conn, f.search) if f.search is not None else []


def _where(
    f: ExportFilter, terms: list[list[int]] | None = None
) -> tuple[sql.Composable, dict[str, Any]]:
    conditions: list[sql.Composable] = []
    params = Params()
    for name, condition in (
        ("project_id", "e.project_id = %(project_id)s"),
        ("workflow_id", "e.workflow_id = %(workflow_id)s"),
        ("status", "e.status = %(status)s"),
        ("since", "e.started_at >= %(since)s"),
        ("until", "e.started_at < %(until)s"),
    ):
        value = getattr(f, name)
        if value is not None:
            conditions.append(sql.SQL(condition))
            params[name] = value
    if f.search is not None:
        conditions.append(matching_executions(params, f.search, terms))
    if not conditions:
        return sql.SQL("TRUE"), params
    return sql.SQL(" AND ").join(conditions), params


def export_statement(
    kind: ExportKind, f: ExportFilter, terms: list[list[int]] | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The SELECT of an export of ``kind`` filtered by ``f``, with its parameters
    (``terms``: :func:`search_terms` of ``f``)."""
    spec = KINDS[kind]
    where, params = _where(f, terms)
    statement = sql.SQL("SELECT {cols} FROM {source} WHERE {where} ORDER BY {order}").format(
        cols=spec.select_list(), source=spec.source, where=where, order=spec.order_by
    )
    return statement, params


def iter_export_batches(
    conn: DbConnection,
    kind: ExportKind,
    f: ExportFilter,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[Sequence[tuple[Any, ...]]]:
    """The rows of ``kind`` matching ``f`` visible in ``conn``'s unit of work, as tuples in
    the order of ``KINDS[kind].columns``, ``batch_size`` rows at a time.

    ``conn`` must be inside a unit of work (the cursor lives in its transaction). Closing
    the iterator early closes the cursor.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more (got {batch_size})")
    statement, params = export_statement(kind, f, search_terms(conn, f))
    conn.execute("SELECT set_config('TimeZone', 'UTC', true)")
    with conn.cursor(name="wfmon_export", row_factory=tuple_row, binary=True) as cur:
        cur.itersize = batch_size
        cur.execute(statement, params)
        while rows := cur.fetchmany(batch_size):
            yield rows


def count_export_rows(conn: DbConnection, kind: ExportKind, f: ExportFilter) -> int:
    """How many rows an export of ``kind`` filtered by ``f`` would write (same RLS)."""
    spec = KINDS[kind]
    where, params = _where(f, search_terms(conn, f))
    row = conn.execute(
        sql.SQL("SELECT count(*) AS n FROM {source} WHERE {where}").format(
            source=spec.source, where=where
        ),
        params,
    ).fetchone()
    return int(row["n"]) if row else 0


# -- COPY: PostgreSQL formats the rows --------------------------------------------------------

#: How :func:`iter_export_copy` has PostgreSQL write a row:
#:
#: ``csv``
#:     The CSV an export writes (what :mod:`csv` writes for the same values): COPY's CSV
#:     (RFC 4180 quoting, NULL an empty unquoted field), timestamps as Python's
#:     ``datetime.isoformat()`` of the UTC time, booleans ``true``/``false``, UUIDs and JSON
#:     as text, an empty text as an empty field.
#: ``jsonl``
#:     One JSON object per row, built in SQL (one text column, written verbatim): keys in
#:     column order, NULL ``null``, text through ``to_json`` (the escapes of
#:     :func:`json.encoder.encode_basestring`), timestamps as in ``csv``, JSON nested.
#:     Sent as binary COPY, so PostgreSQL does not scan the ~1 KB line for CSV quoting
#:     (measured: ~15% of the backend's CPU per row); each row's buffer is the JSON text
#:     alone, without a line end.
#: ``arrow``
#:     COPY's CSV of the plain values for :mod:`pyarrow.csv`: timestamps PostgreSQL's ISO
#:     text in UTC, booleans ``t``/``f``; an empty text is ``""`` and NULL an empty field.
CopyFormat = Literal["csv", "jsonl", "arrow"]

#: A tag in the statement: ``pg_stat_activity`` shows which backends run an export.
_TAG: Final = sql.SQL('/* "wfmon_export" */ ')

#: COPY options per format. ``jsonl``: binary COPY of its one text column, whose bytes
#: are the JSON text as they are (see :func:`_binary_texts`).
_COPY_OPTIONS: Final[dict[CopyFormat, sql.Composable]] = {
    "csv": sql.SQL("(FORMAT csv)"),
    "jsonl": sql.SQL("(FORMAT binary)"),
    "arrow": sql.SQL("(FORMAT csv)"),
}

#: Binary COPY: signature, flags (int32), header extension length (int32).
_BINARY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
_BINARY_HEADER: Final = len(_BINARY_SIGNATURE) + 8
_TRAILER: Final = b"\xff\xff"


def _binary_text(message: Buffer, first: bool) -> Buffer | None:
    """The value of one message of a binary COPY of one non-NULL text column; None for the
    trailer (int16 -1) that ends it. The file header (19 bytes) comes with the first
    message; with no row at all, the trailer follows it in the same message."""
    data = memoryview(message)
    if first:
        if bytes(data[: len(_BINARY_SIGNATURE)]) != _BINARY_SIGNATURE:
            raise ValueError("binary COPY: no file header")
        extension = int.from_bytes(data[_BINARY_HEADER - 4 : _BINARY_HEADER], "big")
        data = data[_BINARY_HEADER + extension :]
    if bytes(data[:2]) == _TRAILER:
        return None
    if bytes(data[:2]) != b"\x00\x01":
        raise ValueError("binary COPY: expected one column per row")
    return data[6:]


def _iso_utc(expr: sql.Composable) -> sql.Composable:
    """``expr`` (timestamptz) as ``datetime.isoformat()`` writes it in UTC: microseconds
    only when there are any, offset ``+00:00``; independent of the session's TimeZone."""
    return sql.SQL(
        "CASE WHEN date_trunc('second', {e}) = {e} "
        "THEN to_char({e} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') "
        "ELSE to_char({e} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') END"
    ).format(e=expr)


def _csv_value(expr: sql.Composable, sql_type: str) -> sql.Composable:
    if sql_type == "timestamptz":
        return _iso_utc(expr)
    if sql_type == "text":
        return sql.SQL("nullif({}, '')").format(expr)
    if sql_type in ("uuid", "jsonb", "boolean"):
        return sql.SQL("{}::text").format(expr)
    return expr


def _json_value(expr: sql.Composable, sql_type: str) -> sql.Composable:
    if sql_type == "timestamptz":
        value = sql.SQL("'\"' || {} || '\"'").format(_iso_utc(expr))
    elif sql_type == "text":
        value = sql.SQL("to_json({})::text").format(expr)
    elif sql_type == "uuid":
        value = sql.SQL("'\"' || {}::text || '\"'").format(expr)
    else:  # integer, bigint, boolean, jsonb: their text is their JSON
        value = sql.SQL("{}::text").format(expr)
    return sql.SQL("coalesce({}, 'null')").format(value)


def _arrow_value(expr: sql.Composable, sql_type: str) -> sql.Composable:
    if sql_type in ("uuid", "jsonb"):
        return sql.SQL("{}::text").format(expr)
    return expr


def _expressions(spec: KindSpec) -> list[tuple[Column, sql.Composable]]:
    return [(c, sql.Identifier(spec.alias, c.name)) for c in spec.own] + [
        (c, _EXECUTION_EXPRESSIONS[c.name]) for c in spec.context
    ]


def _copy_select_list(spec: KindSpec, fmt: CopyFormat) -> sql.Composable:
    columns = _expressions(spec)
    if fmt == "jsonl":
        parts: list[sql.Composable] = []
        for i, (c, expr) in enumerate(columns):
            key = ("{" if i == 0 else ",") + json.dumps(c.name) + ":"
            parts.append(sql.Literal(key))
            parts.append(_json_value(expr, c.sql_type))
        parts.append(sql.Literal("}"))
        return sql.SQL("{} AS line").format(sql.SQL(" || ").join(parts))
    value = _csv_value if fmt == "csv" else _arrow_value
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(value(expr, c.sql_type), sql.Identifier(c.name))
        for c, expr in columns
    )


def export_copy_statement(
    kind: ExportKind, f: ExportFilter, fmt: CopyFormat, terms: list[list[int]] | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """``COPY (SELECT ...) TO STDOUT`` of an export of ``kind`` filtered by ``f``, rows
    written as ``fmt`` says (see :data:`CopyFormat`), with its parameters (COPY takes no
    server-side parameters: psycopg binds them client-side, as quoted literals)."""
    spec = KINDS[kind]
    where, params = _where(f, terms)
    statement = sql.SQL(
        "{tag}COPY (SELECT {cols} FROM {source} WHERE {where} ORDER BY {order}) TO STDOUT {options}"
    ).format(
        tag=_TAG,
        cols=_copy_select_list(spec, fmt),
        source=spec.source,
        where=where,
        order=spec.order_by,
        options=_COPY_OPTIONS[fmt],
    )
    return statement, params


def iter_export_copy(
    conn: DbConnection,
    kind: ExportKind,
    f: ExportFilter,
    fmt: CopyFormat,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Generator[list[Buffer], None, None]:
    """The rows of ``kind`` matching ``f`` visible in ``conn``'s unit of work, formatted
    by PostgreSQL as ``fmt`` (one buffer per row, each ending in ``\\n``; ``jsonl``: the
    JSON text alone), ``batch_size`` rows at a time.

    One ``COPY (SELECT ...) TO STDOUT`` runs in ``conn``'s unit of work (it must be in
    one): the SELECT runs under the caller's row-level security like any other. Closing
    the iterator early cancels the COPY. A failure (the backend goes away) raises.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more (got {batch_size})")
    statement, params = export_copy_statement(kind, f, fmt, search_terms(conn, f))
    conn.execute("SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO', true)")
    with conn.cursor() as cur, cur.copy(statement, params or None) as copy:
        rows: list[Buffer] = []
        if fmt == "jsonl":
            # Every message is a one-field tuple (int16 1, int32 length, the text) but
            # the first (the file header first) and the last (the trailer).
            messages = iter(copy)
            first = next(messages, None)
            text = None if first is None else _binary_text(first, True)
            if text is not None:
                rows.append(text)
            for row in messages:
                if row[1] == 1 and row[0] == 0:
                    rows.append(row[6:])
                    if len(rows) >= batch_size:
                        yield rows
                        rows = []
                elif _binary_text(row, False) is not None:
                    raise ValueError("binary COPY: expected one column per row")
        else:
            for row in copy:
                rows.append(row)
                if len(rows) >= batch_size:
                    yield rows
                    rows = []
        if rows:
            yield rows
