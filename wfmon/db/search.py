"""Search across every execution the caller may see (issue 12), from a parsed
:class:`~wfmon.search.query.SearchQuery`.

Runs in the caller's unit of work (``Database.as_user``): row-level security decides which
executions exist, there is no owner condition here. Text and JSON terms read
``execution_search_documents`` (migration 0400: one lower-cased document per execution,
kept current by triggers on the sync's writes); node and component terms use btree
indexes. Why not trigram / GIN indexes: docs/architecture/search.md.

Every value is a parameter; the statement is composed with :mod:`psycopg.sql`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from wfmon.db.database import DbConnection
from wfmon.model.vocabulary import DEFAULT_EXECUTION_SORT, ExecutionSort
from wfmon.search.query import JsonMatch, JsonSide, SearchQuery, TextMatch

MAX_PAGE_SIZE: Final = 100
#: Matching components named per execution (the count says how many there are).
MAX_MATCHES_PER_EXECUTION: Final = 5
#: Characters of context either side of a text match.
SNIPPET_CONTEXT: Final = 40
#: A path with more numeric keys than this is matched without the containment index.
_MAX_NUMERIC_KEYS: Final = 3

#: Each sort ends with id so that pages are stable when times tie.
_SORTS: Final[dict[ExecutionSort, sql.SQL]] = {
    ExecutionSort.STARTED_AT_DESC: sql.SQL("e.started_at DESC, e.id DESC"),
    ExecutionSort.STARTED_AT_ASC: sql.SQL("e.started_at ASC, e.id ASC"),
    ExecutionSort.CLOSED_AT_DESC: sql.SQL("e.closed_at DESC NULLS FIRST, e.id DESC"),
    ExecutionSort.DURATION_DESC: sql.SQL("e.duration_ms DESC NULLS LAST, e.id DESC"),
}


@dataclass(frozen=True)
class SearchMatch:
    """Where an execution matched: a component (node), a retry attempt, or the execution."""

    #: ``component``, ``attempt`` or ``execution``.
    source: str
    #: ``node``, ``component``, ``error``, ``input`` or ``output``.
    field: str
    snippet: str
    node_id: str | None = None
    component_name: str | None = None
    status: str | None = None
    attempt: int | None = None
    component_execution_id: UUID | None = None


@dataclass
class SearchHit:
    id: UUID
    project_id: UUID
    workflow_id: UUID | None
    workflow_name: str | None
    workflow_type: str
    status: str
    started_at: datetime
    closed_at: datetime | None
    duration_ms: int | None
    matches: list[SearchMatch] = field(default_factory=list)
    #: How many components / attempts / execution fields matched (``matches`` is capped).
    match_count: int = 0


@dataclass(frozen=True)
class SearchPage:
    items: list[SearchHit]
    total: int
    offset: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.items) < self.total


class Params(dict[str, Any]):
    """Named parameters of one statement: :meth:`add` returns the placeholder for a value."""

    def add(self, value: Any) -> sql.Placeholder:
        name = f"p{len(self)}"
        self[name] = value
        return sql.Placeholder(name)


def like_pattern(text: str) -> str:
    """``%text%`` for LIKE on lower-cased text, with ``%``, ``_`` and ``\\`` escaped."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def containment_documents(match: JsonMatch) -> list[Any]:
    """JSON documents ``d`` such that a value having ``match.value`` at ``match.path``
    contains ``d`` (``@>``). A numeric key is either an object key or a list position, so
    it yields both forms (a list in ``@>`` matches any element; the exact check follows)."""
    docs: list[Any] = [match.value]
    for key in reversed(match.path):
        nxt: list[Any] = []
        for d in docs:
            nxt.append({key: d})
            if key.isdigit():
                nxt.append([d])
        docs = nxt
    return docs


def _json_condition(params: Params, match: JsonMatch) -> sql.Composable:
    sides = {
        JsonSide.INPUT: ["input_values"],
        JsonSide.OUTPUT: ["output_values"],
        JsonSide.EITHER: ["input_values", "output_values"],
    }[match.side]
    if sum(k.isdigit() for k in match.path) > _MAX_NUMERIC_KEYS:
        # Too many alternatives: compare every element at the path instead.
        parts = [
            sql.SQL(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(d.{}) v WHERE v #> {} = {})"
            ).format(
                sql.Identifier(side), params.add(list(match.path)), params.add(Jsonb(match.value))
            )
            for side in sides
        ]
    else:
        parts = [
            sql.SQL("d.{} @> {}").format(sql.Identifier(side), params.add(Jsonb([doc])))
            for side in sides
            for doc in containment_documents(match)
        ]
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def _text_condition(params: Params, match: TextMatch) -> sql.Composable:
    pattern = params.add(like_pattern(match.text))
    columns = [
        name
        for name, wanted in (
            ("errors", match.in_errors),
            ("inputs", match.in_inputs),
            ("outputs", match.in_outputs),
        )
        if wanted
    ]
    return sql.SQL("({})").format(
        sql.SQL(" OR ").join(
            sql.SQL("d.{} LIKE {}").format(sql.Identifier(c), pattern) for c in columns
        )
    )


def _where(
    params: Params, query: SearchQuery, project_id: UUID | None, workflow_id: UUID | None
) -> tuple[list[sql.Composable], bool]:
    """The conditions on ``e`` (executions), ``w`` (workflows) and ``d`` (documents), and
    whether the documents are needed."""
    conds: list[sql.Composable] = []
    if project_id is not None:
        conds.append(sql.SQL("e.project_id = {}").format(params.add(project_id)))
    if workflow_id is not None:
        conds.append(sql.SQL("e.workflow_id = {}").format(params.add(workflow_id)))
    if query.statuses:
        conds.append(
            sql.SQL("e.status = ANY({})").format(
                params.add(sorted(s.value for s in query.statuses))
            )
        )
    for name in query.workflows:
        conds.append(
            sql.SQL("(lower(w.name) = {0} OR lower(e.workflow_type) = {0})").format(
                params.add(name.lower())
            )
        )
    for node in query.nodes:
        conds.append(
            sql.SQL(
                "e.id IN (SELECT c.workflow_execution_id FROM component_executions c "
                "WHERE c.node_id = {})"
            ).format(params.add(node))
        )
    for component in query.components:
        conds.append(
            sql.SQL(
                "e.id IN (SELECT c.workflow_execution_id FROM component_executions c "
                "WHERE c.component_name = {})"
            ).format(params.add(component))
        )
    if query.started_from is not None:
        conds.append(sql.SQL("e.started_at >= {}").format(params.add(query.started_from)))
    if query.started_before is not None:
        conds.append(sql.SQL("e.started_at < {}").format(params.add(query.started_before)))
    needs_documents = bool(query.texts or query.json)
    conds += [_text_condition(params, t) for t in query.texts]
    conds += [_json_condition(params, j) for j in query.json]
    return conds, needs_documents


def search_statement(
    query: SearchQuery,
    *,
    project_id: UUID | None = None,
    workflow_id: UUID | None = None,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
    offset: int = 0,
    limit: int = 20,
) -> tuple[sql.Composed, Params]:
    """The page statement and its parameters (exposed for EXPLAIN in the benchmark)."""
    if offset < 0:
        raise ValueError(f"offset must be 0 or more (got {offset})")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE} (got {limit})")
    params = Params()
    conds, needs_documents = _where(params, query, project_id, workflow_id)
    documents = (
        sql.SQL("JOIN execution_search_documents d ON d.execution_id = e.id")
        if needs_documents
        else sql.SQL("")
    )
    where = sql.SQL(" AND ").join(conds) if conds else sql.SQL("true")
    statement = sql.SQL(
        """
        SELECT e.id, e.project_id, e.workflow_id, w.name AS workflow_name, e.workflow_type,
               e.status, e.started_at, e.closed_at, e.duration_ms, count(*) OVER () AS total
        FROM workflow_executions e
        {documents}
        LEFT JOIN workflows w ON w.id = e.workflow_id
        WHERE {where}
        ORDER BY {order}
        LIMIT {limit} OFFSET {offset}
        """
    ).format(
        documents=documents,
        where=where,
        order=_SORTS[sort],
        limit=params.add(limit),
        offset=params.add(offset),
    )
    return statement, params


def search_executions(
    conn: DbConnection,
    query: SearchQuery,
    *,
    project_id: UUID | None = None,
    workflow_id: UUID | None = None,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
    offset: int = 0,
    limit: int = 20,
) -> SearchPage:
    """One page of the executions the caller may see that match ``query``, each with the
    components (and attempts) that matched and the match in context, plus the total."""
    statement, params = search_statement(
        query,
        project_id=project_id,
        workflow_id=workflow_id,
        sort=sort,
        offset=offset,
        limit=limit,
    )
    rows = conn.execute(statement, params).fetchall()
    total = int(rows[0]["total"]) if rows else 0
    if not rows and offset > 0:
        # Past the end: still say how many there are.
        statement, params = search_statement(
            query, project_id=project_id, workflow_id=workflow_id, offset=0, limit=1
        )
        first = conn.execute(statement, params).fetchone()
        total = int(first["total"]) if first else 0
    hits = [SearchHit(**{k: v for k, v in r.items() if k != "total"}) for r in rows]
    if hits and query.looks_into_components:
        _attach_matches(conn, query, hits)
    return SearchPage(items=hits, total=total, offset=offset, limit=limit)


# -- where each execution matched ------------------------------------------------------------


def snippet(text: str, needle: str, context: int = SNIPPET_CONTEXT) -> str:
    """``text`` around the first case-insensitive occurrence of ``needle`` (or its start)."""
    flat = " ".join(text.split())
    at = flat.lower().find(needle.lower())
    if at < 0:
        return flat[: 2 * context] + ("…" if len(flat) > 2 * context else "")
    start, end = max(0, at - context), min(len(flat), at + len(needle) + context)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def _value_at(value: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return False, None
    return True, value


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def _text_of(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)


_COMPONENTS: Final = sql.SQL(
    """
    SELECT c.id, c.workflow_execution_id, c.node_id, c.component_name, c.status,
           c.error_type, c.error_message, c.input_data, c.output_data
    FROM component_executions c
    WHERE c.workflow_execution_id = ANY(%(ids)s) AND ({conditions})
    ORDER BY c.workflow_execution_id, c.started_at NULLS LAST, c.scheduled_event_id
    """
)


def _component_conditions(params: Params, query: SearchQuery) -> sql.Composable:
    parts: list[sql.Composable] = []
    for node in query.nodes:
        parts.append(sql.SQL("c.node_id = {}").format(params.add(node)))
    for component in query.components:
        parts.append(sql.SQL("c.component_name = {}").format(params.add(component)))
    for t in query.texts:
        pattern = params.add(like_pattern(t.text))
        if t.in_errors:
            parts.append(
                sql.SQL("lower(concat_ws(' ', c.error_type, c.error_message)) LIKE {}").format(
                    pattern
                )
            )
        if t.in_inputs:
            parts.append(sql.SQL("lower(c.input_data::text) LIKE {}").format(pattern))
        if t.in_outputs:
            parts.append(sql.SQL("lower(c.output_data::text) LIKE {}").format(pattern))
    for j in query.json:
        columns = {
            JsonSide.INPUT: ["input_data"],
            JsonSide.OUTPUT: ["output_data"],
            JsonSide.EITHER: ["input_data", "output_data"],
        }[j.side]
        for column in columns:
            parts.append(
                sql.SQL("c.{} #> {} = {}").format(
                    sql.Identifier(column), params.add(list(j.path)), params.add(Jsonb(j.value))
                )
            )
    return sql.SQL(" OR ").join(parts) if parts else sql.SQL("false")


def _component_matches(query: SearchQuery, row: dict[str, Any]) -> list[SearchMatch]:
    def make(field_name: str, text: str) -> SearchMatch:
        return SearchMatch(
            source="component",
            field=field_name,
            snippet=text,
            node_id=row["node_id"],
            component_name=row["component_name"],
            status=row["status"],
            component_execution_id=row["id"],
        )

    found: list[SearchMatch] = []
    error = " ".join(p for p in (row["error_type"], row["error_message"]) if p)
    for t in query.texts:
        for name, wanted, text in (
            ("error", t.in_errors, error),
            ("input", t.in_inputs, _text_of(row["input_data"])),
            ("output", t.in_outputs, _text_of(row["output_data"])),
        ):
            if wanted and t.text.lower() in text.lower():
                found.append(make(name, snippet(text, t.text)))
    for j in query.json:
        for name, column in (("input", "input_data"), ("output", "output_data")):
            if j.side not in (JsonSide.EITHER, JsonSide(name)):
                continue
            ok, value = _value_at(row[column], j.path)
            if ok and _json_equal(value, j.value):
                found.append(make(name, f"{'.'.join(j.path)} = {_text_of(value)}"))
    if not found and (row["node_id"] in query.nodes or row["component_name"] in query.components):
        field_name = "node" if row["node_id"] in query.nodes else "component"
        found.append(make(field_name, f"{row['node_id']} ({row['component_name'] or '?'})"))
    return found[:1] if found else []


_ATTEMPTS: Final = sql.SQL(
    """
    SELECT e.id AS execution_id, a.activity_id, a.activity_type, a.attempt, a.outcome,
           a.failure_type, a.failure_message
    FROM workflow_executions e
    JOIN component_execution_attempts a
      ON a.temporal_namespace = e.temporal_namespace
     AND a.temporal_workflow_id = e.temporal_workflow_id
     AND a.temporal_run_id = e.temporal_run_id
    WHERE e.id = ANY(%(ids)s) AND ({conditions})
    ORDER BY e.id, a.activity_id, a.attempt
    """
)

_EXECUTIONS: Final = sql.SQL(
    "SELECT e.id, e.error_message, e.input, e.output FROM workflow_executions e "
    "WHERE e.id = ANY(%(ids)s)"
)


def _attach_matches(conn: DbConnection, query: SearchQuery, hits: list[SearchHit]) -> None:
    by_id = {h.id: h for h in hits}
    ids = list(by_id)

    def add(execution_id: UUID, match: SearchMatch) -> None:
        hit = by_id[execution_id]
        hit.match_count += 1
        if len(hit.matches) < MAX_MATCHES_PER_EXECUTION:
            hit.matches.append(match)

    # The execution's own error, input and result.
    for row in conn.execute(_EXECUTIONS, {"ids": ids}).fetchall():
        for t in query.texts:
            for name, wanted, value in (
                ("error", t.in_errors, row["error_message"] or ""),
                ("input", t.in_inputs, _text_of(row["input"])),
                ("output", t.in_outputs, _text_of(row["output"])),
            ):
                if wanted and t.text.lower() in value.lower():
                    add(row["id"], SearchMatch("execution", name, snippet(value, t.text)))
        for j in query.json:
            for name, column in (("input", "input"), ("output", "output")):
                if j.side not in (JsonSide.EITHER, JsonSide(name)):
                    continue
                ok, value = _value_at(row[column], j.path)
                if ok and _json_equal(value, j.value):
                    path = ".".join(j.path)
                    add(row["id"], SearchMatch("execution", name, f"{path} = {_text_of(value)}"))
    params = Params(ids=ids)
    statement = _COMPONENTS.format(conditions=_component_conditions(params, query))
    for row in conn.execute(statement, params).fetchall():
        for match in _component_matches(query, row):
            add(row["workflow_execution_id"], match)
    error_texts = [t for t in query.texts if t.in_errors]
    if error_texts:
        params = Params(ids=ids)
        conditions = sql.SQL(" OR ").join(
            sql.SQL("lower(concat_ws(' ', a.failure_type, a.failure_message)) LIKE {}").format(
                params.add(like_pattern(t.text))
            )
            for t in error_texts
        )
        for row in conn.execute(_ATTEMPTS.format(conditions=conditions), params):
            text = " ".join(p for p in (row["failure_type"], row["failure_message"]) if p)
            needle = next(t.text for t in error_texts if t.text.lower() in text.lower())
            add(
                row["execution_id"],
                SearchMatch(
                    "attempt",
                    "error",
                    snippet(text, needle),
                    node_id=row["activity_id"],
                    component_name=row["activity_type"],
                    status=row["outcome"],
                    attempt=row["attempt"],
                ),
            )


def refresh_search_documents(conn: DbConnection, execution_ids: list[UUID] | None = None) -> int:
    """Rebuild search documents (as ``wfmon_system``): these executions, or all of them
    (after migration 0400 on a database that already held executions). Returns how many."""
    if execution_ids is None:
        conn.execute(
            "SELECT wfmon_refresh_search_documents(ARRAY(SELECT id FROM workflow_executions))"
        )
    else:
        conn.execute("SELECT wfmon_refresh_search_documents(%s::uuid[])", (execution_ids,))
    row = conn.execute("SELECT count(*) AS n FROM execution_search_documents").fetchone()
    return int(row["n"]) if row else 0
