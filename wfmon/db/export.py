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

from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

from psycopg import Copy, sql
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
#: Bytes of COPY rows per batch at most (:func:`iter_export_copy`): rows with large payloads
#: (Temporal allows 2 MB each) come in smaller batches, so memory stays bounded by this
#: and Arrow's 32-bit string offsets never overflow in one batch.
DEFAULT_BATCH_BYTES: Final = 32 << 20

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


#: Every kind's rows belong to an execution, ``e``; exports list executions in this order.
_EXECUTIONS: Final = sql.SQL("workflow_executions e")
_EXECUTION_ORDER: Final = sql.SQL("e.started_at, e.id")


@dataclass(frozen=True)
class RowsOfExecution:
    """Where the rows of a kind that belong to one execution ``e`` come from."""

    #: The table, with its alias (``component_executions c``).
    table: sql.Composable
    #: The condition that ties a row to ``e``.
    of_execution: sql.Composable
    #: The columns that order the rows within one execution.
    order_by: tuple[str, ...]


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
    #: None: the rows are the executions themselves.
    rows: RowsOfExecution | None

    @property
    def source(self) -> sql.Composable:
        if self.rows is None:
            return _EXECUTIONS
        return sql.SQL("{} JOIN {} ON {}").format(
            _EXECUTIONS, self.rows.table, self.rows.of_execution
        )

    @property
    def order_by(self) -> sql.Composable:
        if self.rows is None:
            return _EXECUTION_ORDER
        keys = [sql.Identifier(self.alias, name) for name in self.rows.order_by]
        return sql.SQL(", ").join([_EXECUTION_ORDER, *keys])

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
        rows=None,
    ),
    "components": KindSpec(
        kind="components",
        description="One row per component (node) run of an execution, all attempts included.",
        own=COMPONENT_EXECUTIONS.with_roles(READABLE),
        alias="c",
        context=EXECUTION_OF_COMPONENT,
        rows=RowsOfExecution(
            table=sql.SQL("component_executions c"),
            of_execution=sql.SQL("c.workflow_execution_id = e.id"),
            order_by=("scheduled_event_id",),
        ),
    ),
    "attempts": KindSpec(
        kind="attempts",
        description="One row per attempt of a component run, as the worker recorded it.",
        own=COMPONENT_EXECUTION_ATTEMPTS.with_roles(READABLE),
        alias="a",
        context=EXECUTION_OF_ATTEMPT,
        rows=RowsOfExecution(
            table=sql.SQL("component_execution_attempts a"),
            of_execution=sql.SQL(
                "a.temporal_namespace = e.temporal_namespace "
                "AND a.temporal_workflow_id = e.temporal_workflow_id "
                "AND a.temporal_run_id = e.temporal_run_id"
            ),
            order_by=("activity_id", "attempt"),
        ),
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
#: ``arrow``
#:     COPY's CSV of the plain values for :mod:`pyarrow.csv`: timestamps PostgreSQL's ISO
#:     text in UTC, booleans ``t``/``f``; an empty text is ``""`` and NULL an empty field.
#: ``text``
#:     COPY's text format of the same plain values, for CSV and JSON Lines
#:     (:mod:`wfmon.export.copy_text` builds them with Arrow): tab-separated, NULL ``\N``,
#:     backslash escapes (``\\ \b \f \n \r \t \v``), no quoting. Cheaper for PostgreSQL
#:     than CSV (measured 5.3-7.0 against 7.1-8.9 µs a row, the same rows minutes apart), and
#:     its escapes are mostly JSON's already. Formatting in SQL cost PostgreSQL more, in one
#:     backend: JSON Lines ~6 µs a row more (capping an export near 65,000 rows/s here),
#:     CSV's ``to_char`` timestamps ~1 µs each.
CopyFormat = Literal["arrow", "text"]

#: A tag in the statement: ``pg_stat_activity`` shows which backends run an export.
_TAG: Final = sql.SQL('/* "wfmon_export" */ ')

#: COPY options per format.
_COPY_OPTIONS: Final[dict[CopyFormat, sql.Composable]] = {
    "arrow": sql.SQL("(FORMAT csv)"),
    "text": sql.SQL("(FORMAT text)"),
}


@dataclass(frozen=True)
class CopyBatch:
    """Rows PostgreSQL formatted (:func:`iter_export_copy`): ``parts`` in order (one per
    row, each ending in ``\n``), and how many rows they hold."""

    parts: list[Buffer]
    rows: int


def _plain_value(expr: sql.Composable, sql_type: str) -> sql.Composable:
    """What every COPY format sends of a column: its value, UUIDs and JSON as their text."""
    if sql_type in ("uuid", "jsonb"):
        return sql.SQL("{}::text").format(expr)
    return expr


def _expressions(spec: KindSpec) -> list[tuple[Column, sql.Composable]]:
    return [(c, sql.Identifier(spec.alias, c.name)) for c in spec.own] + [
        (c, _EXECUTION_EXPRESSIONS[c.name]) for c in spec.context
    ]


def _copy_select_list(spec: KindSpec) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(_plain_value(expr, c.sql_type), sql.Identifier(c.name))
        for c, expr in _expressions(spec)
    )


def export_copy_statement(
    kind: ExportKind, f: ExportFilter, fmt: CopyFormat, terms: list[list[int]] | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """``COPY (SELECT ...) TO STDOUT`` of an export of ``kind`` filtered by ``f``, rows
    written as ``fmt`` says (see :data:`CopyFormat`), with its parameters (COPY takes no
    server-side parameters: psycopg binds them client-side, as quoted literals)."""
    spec = KINDS[kind]
    where, params = _where(f, terms)
    query = sql.SQL("SELECT {cols} FROM {source} WHERE {where} ORDER BY {order}").format(
        cols=_copy_select_list(spec),
        source=spec.source,
        where=where,
        order=spec.order_by,
    )
    statement = sql.SQL("{tag}COPY ({query}) TO STDOUT {options}").format(
        tag=_TAG, query=query, options=_COPY_OPTIONS[fmt]
    )
    return statement, params


def iter_export_copy(
    conn: DbConnection,
    kind: ExportKind,
    f: ExportFilter,
    fmt: CopyFormat,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> Generator[CopyBatch, None, None]:
    """The rows of ``kind`` matching ``f`` visible in ``conn``'s unit of work, formatted
    by PostgreSQL as ``fmt``, in batches of ``batch_size`` rows, or fewer once they hold
    ``batch_bytes`` (the last one fewer; every batch holds at least one row).

    One ``COPY (SELECT ...) TO STDOUT`` runs in ``conn``'s unit of work (it must be in
    one): the SELECT runs under the caller's row-level security like any other. Closing
    the iterator early cancels the COPY. A failure (the backend goes away) raises.
    """
    if batch_size < 1 or batch_bytes < 1:
        raise ValueError(
            f"batch_size and batch_bytes must be 1 or more ({batch_size}, {batch_bytes})"
        )
    statement, params = export_copy_statement(kind, f, fmt, search_terms(conn, f))
    conn.execute("SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO', true)")
    # Closing this closes the read-ahead first (it waits for the batch being read), then
    # the COPY.
    with (
        conn.cursor() as cur,
        cur.copy(statement, params or None) as copy,
        closing(_read_ahead(_copy_batches(copy, batch_size, batch_bytes))) as batches,
    ):
        yield from batches


def _read_ahead(items: Iterator[CopyBatch]) -> Generator[CopyBatch, None, None]:
    """``items``, each next one read on a worker thread while the caller works on the
    current one: PostgreSQL keeps sending rows while a batch is formatted and sent
    (pyarrow and sockets release the GIL). One item is read ahead at most and only one
    ``next`` runs at a time; closing this waits for the pending one."""
    with ThreadPoolExecutor(1, thread_name_prefix="wfmon-export-read") as reader:
        pending = reader.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = reader.submit(next, items, None)
            yield item


def _copy_batches(copy: Copy, batch_size: int, batch_bytes: int) -> Iterator[CopyBatch]:
    parts: list[Buffer] = []
    size = 0
    for row in copy:
        parts.append(row)
        size += len(row)
        if len(parts) >= batch_size or size >= batch_bytes:
            yield CopyBatch(parts, len(parts))
            parts, size = [], 0
    if parts:
        yield CopyBatch(parts, len(parts))
