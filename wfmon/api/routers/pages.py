"""Server-rendered pages: projects, a project (workflows, connections, statistics), a
workflow (overview, statistics, executions) and an execution (timeline, component cards,
retry history, raw history link).

Pages use the same dependencies as the JSON API (:mod:`wfmon.api.deps`: the caller from
the bearer token or the sign-in cookie, and the caller's unit of work) and read through
the same view functions (:mod:`wfmon.api.views`) and :mod:`wfmon.db` queries, under the
same row-level security. Sign-in stores the bearer token in an HttpOnly, SameSite=Strict
cookie; a page without a valid token redirects to ``/signin`` (:mod:`wfmon.api.html`).
Templates, their filters and the error page live in :mod:`wfmon.api.html`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from wfmon.api import views
from wfmon.api.deps import TOKEN_COOKIE, Context, CurrentUserWork, UserConn, authenticate
from wfmon.api.errors import Unauthorized
from wfmon.api.freshness import ensure_fresh
from wfmon.api.html import SORT_LABELS, render_page
from wfmon.api.models import (
    MAX_PAGE,
    ExecutionDetailOut,
    TrendPoint,
)
from wfmon.connections import service as cs
from wfmon.db import DbConnection, definitions
from wfmon.model import DEFAULT_EXECUTION_SORT, ComponentStatus, ExecutionSort, ExecutionStatus

router = APIRouter(include_in_schema=False)

CARDS_PER_PAGE = 100
EXECUTIONS_PER_PAGE = 20


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/projects"


# -- sign in / out -----------------------------------------------------------------------


def _signed_in(token: str, ctx: Context, target: str | None) -> Response:
    authenticate(token, ctx.jwt_secret)  # raises Unauthorized
    response = RedirectResponse(_safe_next(target), status_code=303)
    response.set_cookie(
        TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/", max_age=7 * 24 * 3600
    )
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_page(
    request: Request,
    ctx: Context,
    token: Annotated[str | None, Query(max_length=8192)] = None,
    next: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """The sign-in form. Links ``/signin#token=...&next=...`` (what ``signin_url`` and the
    demo print) keep the token in the fragment: the page's script POSTs it. The older
    ``?token=...`` form still signs in, but puts the token in the request line (the
    access log of ``wfmon serve`` redacts it; proxies may not): prefer the fragment."""
    if token:
        try:
            return _signed_in(token, ctx, next)
        except Unauthorized as exc:
            return render_page(
                request, "signin.html", error=exc.message, next=next, signed_in=False
            )
    return render_page(request, "signin.html", error=None, next=next, signed_in=False)


@router.post("/signin", response_class=HTMLResponse)
async def signin_submit(request: Request, ctx: Context) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = form["next"][0] if form.get("next") else None
    try:
        return _signed_in(token, ctx, target)
    except Unauthorized as exc:
        return render_page(
            request, "signin.html", status_code=401, error=exc.message, next=target, signed_in=False
        )


@router.post("/signout")
def signout() -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/projects", status_code=303)


# -- projects -------------------------------------------------------------------------------


@router.get("/projects", response_class=HTMLResponse)
def projects_page(request: Request, conn: UserConn) -> Response:
    items = views.projects(conn)
    return render_page(request, "projects.html", projects=items)


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(
    request: Request,
    ctx: Context,
    conn: UserConn,
    project_id: UUID,
    tab: Literal["workflows", "connections", "statistics"] = "workflows",
) -> Response:
    project = views.project_detail(conn, project_id)
    connections = cs.list_connections(conn, project_id) if tab == "connections" else []
    stats = views.project_stats(conn, project_id) if tab == "statistics" else None
    return render_page(
        request,
        "project.html",
        project=project,
        tab=tab,
        connections=connections,
        stats=stats,
        chart=_chart(stats.stored_trend, stats.live.trend) if stats else None,
        connections_enabled=ctx.keyring is not None,
        keyring_error=ctx.keyring_error,
    )


# -- workflows ------------------------------------------------------------------------------


@router.get("/workflows/{workflow_id}", response_class=HTMLResponse)
def workflow_page(
    request: Request,
    conn: UserConn,
    workflow_id: UUID,
    tab: Literal["overview", "statistics", "executions"] = "overview",
    status: ExecutionStatus | None = None,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    wf = views.workflow(conn, workflow_id)
    nodes = definitions.workflow_nodes(conn, workflow_id)
    executions = (
        views.execution_page(
            conn,
            workflow_id,
            status=status,
            page=page,
            page_size=EXECUTIONS_PER_PAGE,
            sort=sort,
        )
        if tab in ("executions", "overview")
        else None
    )
    stats = views.workflow_stats(conn, workflow_id) if tab in ("statistics", "overview") else None
    return render_page(
        request,
        "workflow.html",
        wf=wf,
        tab=tab,
        nodes=nodes,
        executions=executions,
        stats=stats,
        chart=_chart(stats.stored_trend, stats.live.trend) if stats else None,
        status=status,
        sort=sort,
        statuses=list(ExecutionStatus),
        sorts=SORT_LABELS,
    )


# -- executions -----------------------------------------------------------------------------


@router.get("/executions/{execution_id}", response_class=HTMLResponse)
async def execution_page(
    request: Request,
    ctx: Context,
    work: CurrentUserWork,
    execution_id: UUID,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    status: ComponentStatus | None = None,
    fragment: bool = False,
) -> Response:
    """The execution: summary, timeline and component cards (100 per page), refreshed
    live by the page's script while the execution runs (``fragment=1``). The cache-aside
    sync comes first; the caller's unit of work opens after it."""
    synced_now, error = await ensure_fresh(ctx, execution_id, work.user)
    offset = (page - 1) * CARDS_PER_PAGE

    def read(conn: DbConnection) -> ExecutionDetailOut:
        return views.execution_detail(
            conn,
            execution_id,
            offset=offset,
            limit=CARDS_PER_PAGE,
            status=status,
            synced_now=synced_now,
            sync_error=error,
        )

    detail = await work.run(read)
    pages = max(1, math.ceil(detail.component_total / CARDS_PER_PAGE))
    return render_page(
        request,
        "execution_live.html" if fragment else "execution.html",
        d=detail,
        e=detail.execution,
        page=page,
        pages=pages,
        status=status,
        per_page=CARDS_PER_PAGE,
        fragment=fragment,
    )


# -- charts -------------------------------------------------------------------------------


def _chart(stored: list[TrendPoint], live: list[TrendPoint]) -> dict[str, Any]:
    """The trend table's series when the data platform has built it, else the live one."""
    chart = trend_chart(stored or live)
    chart["source"] = (
        "from the statistics tables (by close day)"
        if stored
        else "computed now from your executions (by start day)"
    )
    return chart


def trend_chart(
    points: list[TrendPoint], width: int = 720, height: int = 160, days: int = 30
) -> dict[str, Any]:
    """Bars for runs (and the failed part of them) per day over the last ``days`` days
    (days without runs are empty slots), as SVG geometry."""
    today = datetime.now(UTC).date()
    by_day = {p.day: p for p in points}
    window = [today - timedelta(days=days - 1 - i) for i in range(days)]
    top = max((p.runs for p in points), default=0)
    slot = width / days
    usable = height - 20
    bars = []
    for i, day in enumerate(window):
        p = by_day.get(day)
        runs, failures = (p.runs, p.failures) if p else (0, 0)
        h = runs / top * usable if top else 0
        fh = failures / top * usable if top else 0
        bars.append(
            {
                "x": round(i * slot + 1, 1),
                "w": round(max(slot - 2, 1), 1),
                "y": round(height - h, 1),
                "h": round(h, 1),
                "fy": round(height - fh, 1),
                "fh": round(fh, 1),
                "label": f"{day.isoformat()}: {runs} runs, {failures} failed",
                "day": day.isoformat(),
            }
        )
    return {"bars": bars if top else [], "width": width, "height": height, "max": top}
