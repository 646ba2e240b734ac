"""Search across every execution the caller may see: ``GET /api/search`` (JSON) and the
page ``GET /search`` (search box, and a form that builds the same query string).

The query language is :mod:`wfmon.search.query` (its docstring is the syntax reference,
docs/user-guide/search.md the guide). A query that does not parse is a 422 naming the
problem and its position; nothing is searched. Results come from
:func:`wfmon.db.search.search_executions` under the caller's row-level security.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from wfmon.api.deps import UserConn
from wfmon.api.errors import ERROR_RESPONSES, FieldError, error_response
from wfmon.api.html import render_page
from wfmon.api.models import json_response
from wfmon.api.search_models import SearchPageOut
from wfmon.db.search import MAX_PAGE_SIZE, SearchPage, search_executions
from wfmon.model import DEFAULT_EXECUTION_SORT, ExecutionSort, ExecutionStatus
from wfmon.search.query import (
    FAILURE_WORD,
    MAX_QUERY_LENGTH,
    SearchSyntaxError,
    parse_search,
)

router = APIRouter(tags=["search"], responses=ERROR_RESPONSES)

#: Furthest offset a page may start at (deep pages: narrow the query instead).
MAX_OFFSET = 10_000
PAGE_SIZE = 20

Q = Annotated[
    str,
    Query(
        max_length=MAX_QUERY_LENGTH,
        description="The query, e.g. `status:failed error:CardDeclined since:7d` "
        "(syntax: docs/user-guide/search.md)",
    ),
]


def _search(
    conn: UserConn,
    q: str,
    project_id: UUID | None,
    workflow_id: UUID | None,
    sort: ExecutionSort,
    offset: int,
    limit: int,
) -> SearchPage:
    return search_executions(
        conn,
        parse_search(q),
        project_id=project_id,
        workflow_id=workflow_id,
        sort=sort,
        offset=offset,
        limit=limit,
    )


@router.get("/api/search", response_model=SearchPageOut)
def search_api(
    conn: UserConn,
    q: Q = "",
    project_id: UUID | None = None,
    workflow_id: UUID | None = None,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> Response:
    """Executions you may see that match ``q`` (every term must hold), newest first unless
    ``sort`` says otherwise, each with the components, attempts or execution fields that
    matched and a snippet of the match. A malformed query is a 422 whose message names
    the problem and its position."""
    try:
        page = _search(conn, q, project_id, workflow_id, sort, offset, limit)
    except SearchSyntaxError as exc:
        message = f"query: {exc}"
        return error_response(
            422, "invalid_input", message, fields=[FieldError(field="query.q", message=str(exc))]
        )
    return json_response(SearchPageOut.of(q, sort, page))


def _quote(value: str) -> str:
    """``value`` as one term value: quoted when it has spaces, quotes or ``:``."""
    value = value.strip()
    if value and not any(c.isspace() or c in '":=\\' for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_query(
    *,
    text: str = "",
    workflow: str = "",
    status: str = "",
    node: str = "",
    component: str = "",
    error: str = "",
    side: str = "input",
    path: str = "",
    value: str = "",
    since: str = "",
    until: str = "",
) -> str:
    """The query string the page's form stands for (the same language as the box)."""
    terms = [text.strip()] if text.strip() else []
    for name, v in (
        ("workflow", workflow),
        ("status", status),
        ("node", node),
        ("component", component),
        ("error", error),
        ("since", since),
        ("until", until),
    ):
        if v.strip():
            terms.append(f"{name}:{_quote(v)}")
    if path.strip():
        prefix = side if side in ("input", "output") else ""
        key = f"{prefix}.{path.strip()}" if prefix else path.strip()
        terms.append(f"{key}:{_quote(value)}")
    return " ".join(terms)


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
def search_page(
    request: Request,
    conn: UserConn,
    q: Q = "",
    workflow: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=40)] = "",
    node: Annotated[str, Query(max_length=200)] = "",
    component: Annotated[str, Query(max_length=200)] = "",
    error: Annotated[str, Query(max_length=500)] = "",
    side: Annotated[str, Query(max_length=10)] = "input",
    path: Annotated[str, Query(max_length=300)] = "",
    value: Annotated[str, Query(max_length=500)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    project_id: UUID | None = None,
    workflow_id: UUID | None = None,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """The search page: results of ``q``, or of the form's fields (which become ``q``)."""
    form = {
        "workflow": workflow,
        "status": status,
        "node": node,
        "component": component,
        "error": error,
        "side": side,
        "path": path,
        "value": value,
        "since": since,
        "until": until,
    }
    query = build_query(text=q, **form)
    context: dict[str, Any] = {
        "q": query,
        "form": form,
        "sort": sort,
        "sorts": list(ExecutionSort),
        "statuses": [*(s.value for s in ExecutionStatus), FAILURE_WORD],
        "project_id": project_id,
        "workflow_id": workflow_id,
        "page": None,
        "error": None,
        "error_position": None,
    }
    if not query:
        return render_page(request, "search.html", 200, **context)
    try:
        page = _search(conn, query, project_id, workflow_id, sort, offset, PAGE_SIZE)
    except SearchSyntaxError as exc:
        context.update(error=str(exc), error_position=exc.position)
        return render_page(request, "search.html", 422, **context)
    context["page"] = page
    return render_page(request, "search.html", 200, **context)
