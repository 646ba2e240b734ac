"""Search across every execution the caller may see (issue 12), from a parsed
:class:`~wfmon.search.query.SearchQuery`.

Runs in the caller's unit of work (``Database.as_user``): row-level security decides which
executions exist, there is no owner condition here. Text and JSON terms are checked on
``execution_search_documents`` (migration 0400: one lower-cased document per execution,
kept current by triggers on the sync's writes). ``PATH = VALUE`` first narrows the
executions with ``execution_search_terms`` (migrations 0401, 0402: hashed ``path=value``
pairs, a btree that RLS lets the caller use because int8 equality is leakproof); the
document check then runs on those candidates only. ``error:TEXT`` and free text scan the
documents (0402 dropped 0401's error trigrams: for common error texts their lookup was
slower than the scan, and they were most of the table and of its write cost). Node and
component terms use btree indexes.
Why not trigram / GIN indexes: docs/architecture/search.md.

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
#: The total is counted up to this many matches; past it a page says "more than
#: COUNT_CAP" (``total_capped``) instead of reading every matching document.
COUNT_CAP: Final = 1000
#: Matching components named per execution (the count says how many there are).
MAX_MATCHES_PER_EXECUTION: Final = 5
#: Characters of context either side of a text match.
SNIPPET_CONTEXT: Final = 40
#: A path with more numeric keys than this is matched without the containment index.
_MAX_NUMERIC_KEYS: Final = 3
#: A path with more numeric keys than this (each is an object key or any list position,
#: so 2**n terms) is not looked up in the term table.
_MAX_TERM_NUMERIC_KEYS: Final = 5

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
    #: Matching executions, exact up to :data:`COUNT_CAP` (and on a last page); when
    #: ``total_capped`` there are more than ``total`` (``COUNT_CAP``, or the end of this
    #: page if it lies deeper).
    total: int
    offset: int
    limit: int
    #: Whether another page follows (known exactly: the page reads one row more).
    has_more: bool
    total_capped: bool = False


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


def json_term_paths(match: JsonMatch) -> list[str]:
    """The term paths that a value at ``match.path`` can have (a numeric key is an object
    key or ``*``, any list position); empty when there would be too many."""
    if sum(k.isdigit() for k in match.path) > _MAX_TERM_NUMERIC_KEYS:
        return []
    paths = [""]
    for key in match.path:
        options = [key, "*"] if key.isdigit() else [key]
        paths = [f"{p}.{o}" if p else o for p in paths for o in options]
    return paths


_TERM_HASHES: Final = sql.SQL(
    """
    SELECT wfmon_search_term(x.kind, x.body || coalesce(wfmon_json_term_value(x.value), ''))
           AS term
    FROM unnest(%(kinds)s::text[], %(bodies)s::text[], %(values)s::jsonb[])
         WITH ORDINALITY AS x (kind, body, value, n)
    ORDER BY x.n
    """
)


@dataclass
class _TermLookups:
    """Term bodies of the query, hashed by the database's own function in one round trip."""

    kinds: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    values: list[Jsonb | None] = field(default_factory=list)

    def add(self, kind: str, body: str, value: Jsonb | None = None) -> int:
        self.kinds.append(kind)
        self.bodies.append(body)
        self.values.append(value)
        return len(self.kinds) - 1


def term_lookups(conn: DbConnection, query: SearchQuery) -> list[list[int]]:
    """The term hashes (any of them) per JSON match that can use ``execution_search_terms``.
    Text terms (``error:`` included) have none: they are checked on the documents."""
    lookups = _TermLookups()
    wanted: list[list[int]] = []
    for j in query.json:
        kinds = {JsonSide.INPUT: ["i"], JsonSide.OUTPUT: ["o"], JsonSide.EITHER: ["i", "o"]}
        paths = json_term_paths(j)
        if paths:
            value = Jsonb(j.value)
            wanted.append([lookups.add(k, f"{p}=", value) for k in kinds[j.side] for p in paths])
    if not wanted:
        return []
    rows = conn.execute(
        _TERM_HASHES,
        {"kinds": lookups.kinds, "bodies": lookups.bodies, "values": lookups.values},
    ).fetchall()
    hashes = [int(r["term"]) for r in rows]
    return [sorted({hashes[i] for i in idx}) for idx in wanted]


def _candidates(params: Params, terms: list[int]) -> sql.Composable:
    """Executions having any of ``terms`` (the forms of one ``PATH = VALUE``): an index
    (-only) scan of the caller's rows of execution_search_terms (RLS: created_by)."""
    return sql.SQL(
        "e.id IN (SELECT t.execution_id FROM execution_search_terms t WHERE t.term = ANY({}))"
    ).format(params.add(terms))


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


def _errors_only(match: TextMatch) -> bool:
    """Whether ``match`` is decided by ``execution_search_errors`` (0560): error text
    only, and no line break (that table holds each document's distinct error lines)."""
    return match.in_errors and not (match.in_inputs or match.in_outputs) and "\n" not in match.text


def _text_condition(
    params: Params, match: TextMatch, *, ordered: bool, errors_table: bool
) -> sql.Composable:
    pattern = params.add(like_pattern(match.text))
    if errors_table and _errors_only(match):
        # The documents' distinct error lines (0560): ~10x fewer pages than the documents.
        # No row = no error text, which no search text (3+ characters) matches. Under RLS
        # the planner may not apply LIKE to the column's statistics (not leakproof), so it
        # guesses matches are rare: say which shape to use instead. A page (`ordered`)
        # probes each execution in the page's order until the page is full; a count or a
        # whole set scans the error texts (~1/10 of the documents' pages).
        if ordered:
            return sql.SQL(
                "coalesce((SELECT x.errors LIKE {} FROM execution_search_errors x "
                "WHERE x.execution_id = e.id), false)"
            ).format(pattern)
        return sql.SQL(
            "e.id IN (SELECT x.execution_id FROM execution_search_errors x WHERE x.errors LIKE {})"
        ).format(pattern)
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
    params: Params,
    query: SearchQuery,
    project_id: UUID | None,
    workflow_id: UUID | None,
    terms: list[list[int]],
    ordered: bool = False,
    errors_table: bool = True,
) -> tuple[list[sql.Composable], bool]:
    """The conditions on ``e`` (executions), ``w`` (workflows) and ``d`` (documents), and
    whether the documents are needed; ``ordered``: for a page read in its sort order;
    ``errors_table``: error texts from ``execution_search_errors`` (else the documents)."""
    conds: list[sql.Composable] = [_candidates(params, hashes) for hashes in terms]
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
    needs_documents = bool(query.json) or not all(
        errors_table and _errors_only(t) for t in query.texts
    )
    conds += [
        _text_condition(params, t, ordered=ordered, errors_table=errors_table) for t in query.texts
    ]
    conds += [_json_condition(params, j) for j in query.json]
    return conds, needs_documents


def matching_executions(
    params: Params, query: SearchQuery, terms: list[list[int]] | None = None
) -> sql.Composable:
    """A condition on ``e.id`` true for the executions ``query`` matches (under the
    caller's row-level security, like the search page), for statements of other modules
    (an export of a search's results). ``terms`` from :func:`term_lookups`."""
    return sql.SQL("e.id IN (SELECT e.id {})").format(
        _from_where(params, query, None, None, terms or [])
    )


def _from_where(
    params: Params,
    query: SearchQuery,
    project_id: UUID | None,
    workflow_id: UUID | None,
    terms: list[list[int]],
    ordered: bool = False,
    errors_table: bool = True,
) -> sql.Composed:
    """``FROM ... WHERE ...`` of the matching executions (``e``, ``w``, ``d``)."""
    conds, needs_documents = _where(
        params, query, project_id, workflow_id, terms, ordered, errors_table
    )
    documents = (
        sql.SQL("JOIN execution_search_documents d ON d.execution_id = e.id")
        if needs_documents
        else sql.SQL("")
    )
    return sql.SQL(
        "FROM workflow_executions e {documents} "
        "LEFT JOIN workflows w ON w.id = e.workflow_id WHERE {where}"
    ).format(
        documents=documents,
        where=sql.SQL(" AND ").join(conds) if conds else sql.SQL("true"),
    )


def search_statement(
    query: SearchQuery,
    *,
    project_id: UUID | None = None,
    workflow_id: UUID | None = None,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
    offset: int = 0,
    limit: int = 20,
    terms: list[list[int]] | None = None,
    ids: list[UUID] | None = None,
    errors_table: bool = True,
) -> tuple[sql.Composed, Params]:
    """The page statement and its parameters (exposed for EXPLAIN in the benchmark);
    ``terms`` from :func:`term_lookups` (none and ``errors_table=False``: the documents
    alone decide). It returns up
    to ``limit + 1`` rows: the extra one only says that another page follows, and reads the
    executions in the page's order until the page is full, not every match.

    ``ids``: every matching execution is known (:func:`match_ids_statement`), so the page
    is just those ids in order (``query`` is not applied again)."""
    if offset < 0:
        raise ValueError(f"offset must be 0 or more (got {offset})")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE} (got {limit})")
    params = Params()
    if ids is None:
        from_where = _from_where(
            params, query, project_id, workflow_id, terms or [], True, errors_table
        )
    else:
        from_where = sql.SQL(
            "FROM workflow_executions e LEFT JOIN workflows w ON w.id = e.workflow_id "
            "WHERE e.id = ANY({})"
        ).format(params.add(ids))
    statement = sql.SQL(
        """
        SELECT e.id, e.project_id, e.workflow_id, w.name AS workflow_name, e.workflow_type,
               e.status, e.started_at, e.closed_at, e.duration_ms
        {from_where}
        ORDER BY {order}
        LIMIT {limit} OFFSET {offset}
        """
    ).format(
        from_where=from_where,
        order=_SORTS[sort],
        limit=params.add(limit + 1),
        offset=params.add(offset),
    )
    return statement, params


def match_ids_statement(
    query: SearchQuery,
    *,
    project_id: UUID | None = None,
    workflow_id: UUID | None = None,
    cap: int = COUNT_CAP,
    terms: list[list[int]] | None = None,
    errors_table: bool = True,
) -> tuple[sql.Composed, Params]:
    """The ids of at most ``cap + 1`` matching executions, in whatever order is cheapest:
    more than ``cap`` reads ``cap + 1`` matches, not all of them.

    A query of error texts only reads ``execution_search_errors`` alone: its rows carry
    their execution's owner and its read policy is the executions' own (``created_by`` is
    the caller), so it holds exactly the caller's executions that have error text, and
    joining each match to ``workflow_executions`` would only add a random read per match.
    The page that follows reads the executions under their own policy."""
    params = Params()
    only_errors = (
        errors_table
        and project_id is None
        and workflow_id is None
        and not terms
        and query.texts
        and all(_errors_only(t) for t in query.texts)
        and SearchQuery(texts=query.texts) == query
    )
    if only_errors:
        statement = sql.SQL(
            "SELECT x.execution_id AS id FROM execution_search_errors x WHERE {} LIMIT {}"
        ).format(
            sql.SQL(" AND ").join(
                sql.SQL("x.errors LIKE {}").format(params.add(like_pattern(t.text)))
                for t in query.texts
            ),
            params.add(cap + 1),
        )
        return statement, params
    statement = sql.SQL("SELECT e.id {from_where} LIMIT {cap}").format(
        from_where=_from_where(
            params, query, project_id, workflow_id, terms or [], False, errors_table
        ),
        cap=params.add(cap + 1),
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
    use_terms: bool = True,
    count_cap: int = COUNT_CAP,
) -> SearchPage:
    """One page of the executions the caller may see that match ``query``, each with the
    components (and attempts) that matched and the match in context, plus the total:
    exact up to ``count_cap`` matches, else ``total_capped`` (see :class:`SearchPage`).

    First up to ``count_cap + 1`` matching ids (cheapest order). At most ``count_cap``:
    that is the exact total, and the page is those ids in order (a rare error text costs
    one scan of the error texts, not a probe per visible execution). More: the page reads
    the executions in its order until it is full (a common text fills it quickly).

    ``use_terms=False`` skips ``execution_search_terms`` and ``execution_search_errors``
    (same results, read from the documents alone: the benchmark's and the tests'
    reference)."""
    terms = term_lookups(conn, query) if use_terms else []
    scope: dict[str, Any] = {
        "project_id": project_id,
        "workflow_id": workflow_id,
        "errors_table": use_terms,
    }
    statement, params = match_ids_statement(query, cap=count_cap, terms=terms, **scope)
    ids = [r["id"] for r in conn.execute(statement, params).fetchall()]
    capped = len(ids) > count_cap
    statement, params = search_statement(
        query,
        sort=sort,
        offset=offset,
        limit=limit,
        terms=terms,
        ids=None if capped else ids,
        **scope,
    )
    rows = conn.execute(statement, params).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    total = len(ids)
    if capped:
        total = count_cap
        if rows and not has_more:
            # The last page: now the total is known.
            total, capped = offset + len(rows), False
        elif rows:
            total = max(total, offset + len(rows))
    hits = [SearchHit(**r) for r in rows]
    if hits and query.looks_into_components:
        _attach_matches(conn, query, hits)
    return SearchPage(
        items=hits,
        total=total,
        offset=offset,
        limit=limit,
        has_more=has_more,
        total_capped=capped,
    )


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

# The input as search indexes it (migrations/0610: without the builder's definition), so a
# snippet never points into what the search does not look at.
_EXECUTIONS: Final = sql.SQL(
    "SELECT e.id, e.error_message, wfmon_search_input(e.workflow_type, e.input) AS input, "
    "e.output FROM workflow_executions e WHERE e.id = ANY(%(ids)s)"
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


# -- references for the benchmark (bench/bench_search.py) ------------------------------------

_BASELINE_ERRORS: Final = sql.SQL(
    """
    SELECT e.id, count(*) OVER () AS total
    FROM workflow_executions e
    WHERE e.error_message ILIKE %(p)s
       OR EXISTS (SELECT 1 FROM component_executions c
                  WHERE c.workflow_execution_id = e.id
                    AND concat_ws(' ', c.error_type, c.error_message) ILIKE %(p)s)
       OR EXISTS (SELECT 1 FROM component_execution_attempts a
                  WHERE a.temporal_namespace = e.temporal_namespace
                    AND a.temporal_workflow_id = e.temporal_workflow_id
                    AND a.temporal_run_id = e.temporal_run_id
                    AND concat_ws(' ', a.failure_type, a.failure_message) ILIKE %(p)s)
    ORDER BY e.started_at DESC, e.id DESC
    LIMIT %(limit)s
    """
)

_BASELINE_INPUTS: Final = sql.SQL(
    """
    SELECT e.id, count(*) OVER () AS total
    FROM workflow_executions e
    WHERE e.input @> ANY(%(docs)s::jsonb[])
       OR EXISTS (SELECT 1 FROM component_executions c
                  WHERE c.workflow_execution_id = e.id AND c.input_data @> ANY(%(docs)s::jsonb[]))
    ORDER BY e.started_at DESC, e.id DESC
    LIMIT %(limit)s
    """
)


def baseline_search(
    conn: DbConnection, query: SearchQuery, limit: int = 20
) -> tuple[int, list[UUID]]:
    """The naive way, for the benchmark's baseline: ``error:TEXT`` as ILIKE over the
    executions, component rows and attempts, or ``input.PATH:VALUE`` as jsonb containment
    over the execution's and the components' inputs, under the caller's RLS and without the
    search tables. One text or one input match only. Returns (total, the page's ids)."""
    if len(query.texts) == 1 and not query.json:
        params: dict[str, Any] = {"p": like_pattern(query.texts[0].text), "limit": limit}
        rows = conn.execute(_BASELINE_ERRORS, params).fetchall()
    elif len(query.json) == 1 and not query.texts and query.json[0].side == JsonSide.INPUT:
        docs = [Jsonb(d) for d in containment_documents(query.json[0])]
        rows = conn.execute(_BASELINE_INPUTS, {"docs": docs, "limit": limit}).fetchall()
    else:
        raise ValueError("the baseline takes one error:TEXT or one input.PATH:VALUE")
    return (int(rows[0]["total"]) if rows else 0), [r["id"] for r in rows]


def free_text_trigrams_per_execution(conn: DbConnection, sample: int = 500) -> dict[str, float]:
    """Average distinct trigrams per document of the error text and of the input and output
    JSON text, over ``sample`` documents (as ``wfmon_system``): what indexing free text in
    JSON would add to execution_search_terms."""
    row = conn.execute(
        """
        SELECT avg((SELECT count(*) FROM wfmon_error_trigrams(d.errors))) AS errors,
               avg((SELECT count(*) FROM wfmon_error_trigrams(d.inputs || E'\\n' || d.outputs)))
                   AS json_text,
               avg(cardinality(d.terms)) AS terms
        FROM (SELECT * FROM execution_search_documents LIMIT %(n)s) d
        """,
        {"n": sample},
    ).fetchone()
    assert row is not None
    return {k: round(float(v or 0), 1) for k, v in row.items()}
