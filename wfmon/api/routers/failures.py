"""Failure groups: failures grouped by workflow, node and error fingerprint.

``GET /api/projects/{id}/failure-groups`` (``workflow_id`` filters to one of the project's
workflows) and ``GET /api/workflows/{id}/failure-groups``, and the pages
``/projects/{id}/failures`` and ``/workflows/{id}/failures``: the same parameters
(``sort=newest|biggest``, ``page``, ``page_size``), the same service functions
(:func:`project_groups`, :func:`workflow_groups`) and the same answer (one page of groups,
the total, the page count and, for a project, the groups per workflow). A page past the
last one is a 422 naming the last page. The groups are built by the data platform (the
dbt models ``failure_group_days`` / ``failure_groups``, Dagster asset ``failure_groups``);
each answer says when they were last built. Row-level security shows a workflow's groups
to its owner only (migrations/0410).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from wfmon.api import views
from wfmon.api.deps import UserConn
from wfmon.api.errors import ERROR_RESPONSES, Unprocessable
from wfmon.api.html import render_page
from wfmon.api.models import MAX_PAGE, ProjectDetail, WorkflowOut
from wfmon.db import DbConnection
from wfmon.db import failures as db
from wfmon.db.failures import MAX_PAGE_SIZE, SPARK_DAYS, GroupScope, GroupSort

#: Groups per page unless ``page_size`` says otherwise.
DEFAULT_PAGE_SIZE = 50

router = APIRouter(prefix="/api", tags=["failures"], responses=ERROR_RESPONSES)
pages = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class GroupQuery:
    """Which page of groups, in which order (the query parameters of every list)."""

    sort: GroupSort
    page: int
    page_size: int


def group_query(
    sort: Annotated[
        GroupSort, Query(description="newest: last seen first; biggest: most failures first.")
    ] = GroupSort.NEWEST,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Groups per page.")
    ] = DEFAULT_PAGE_SIZE,
) -> GroupQuery:
    return GroupQuery(sort, page, page_size)


Listing = Annotated[GroupQuery, Depends(group_query)]
WorkflowFilter = Annotated[
    UUID | None, Query(description="Only this workflow's groups (one of the project's).")
]


class FailureGroupOut(BaseModel):
    """One failure group."""

    workflow_id: UUID
    workflow_name: str | None
    node_id: str
    component_name: str | None
    failure_type: str | None
    fingerprint: str = Field(description="Failure type and message with varying parts masked.")
    failures: int = Field(description="Failed or timed-out component executions.")
    executions: int = Field(description="Distinct executions affected.")
    retried_failures: int = Field(description="Failures that were retried before failing.")
    expected_retry_failures: int = Field(description="Of those, retries that were expected.")
    retries: str = Field(description="'none', 'expected' or 'unexpected'.")
    first_seen: datetime
    last_seen: datetime
    per_day: list[int] = Field(description=f"Failures per UTC day, last {SPARK_DAYS} days.")
    latest_execution_id: UUID | None
    latest_message: str | None


class WorkflowGroupsOut(BaseModel):
    """How many groups one workflow of the scope has."""

    workflow_id: UUID
    workflow_name: str | None
    groups: int


class FailureGroupsOut(BaseModel):
    """One page of the failure groups of a project or a workflow, and when they were built."""

    sort: GroupSort
    built_at: datetime | None = Field(description="Last build of the groups (None: never).")
    workflow_id: UUID | None = Field(description="The workflow filter (None: every workflow).")
    total: int = Field(description="Groups in the scope (all pages).")
    page: int
    page_size: int
    pages: int = Field(description="Pages of page_size groups (at least 1).")
    workflows: list[WorkflowGroupsOut] = Field(
        description="Groups per workflow of the scope (the workflow filter ignored)."
    )
    groups: list[FailureGroupOut]


def _retries(row: dict[str, Any]) -> str:
    if not row["retried_failures"]:
        return "none"
    return "expected" if row["expected_retry_failures"] == row["retried_failures"] else "unexpected"


def _answer(
    conn: DbConnection, scope: GroupScope, counts: list[db.WorkflowGroups], q: GroupQuery
) -> FailureGroupsOut:
    """The page ``q`` of ``scope``, whose groups per workflow are ``counts`` (the total is
    their sum, under the filter); a page past the last is a 422 naming the last one."""
    total = sum(c.groups for c in counts if scope.workflow_id in (None, c.workflow_id))
    n_pages = max(1, math.ceil(total / q.page_size))
    if q.page > n_pages:
        raise Unprocessable(
            f"page {q.page} is out of range: {total} failure group(s) make {n_pages} page(s)"
            f" of {q.page_size}; the last page is {n_pages}"
        )
    rows = db.failure_group_page(
        conn, scope, sort=q.sort, offset=(q.page - 1) * q.page_size, limit=q.page_size
    )
    return FailureGroupsOut(
        sort=q.sort,
        built_at=db.last_built(conn),
        workflow_id=scope.workflow_id,
        total=total,
        page=q.page,
        page_size=q.page_size,
        pages=n_pages,
        workflows=[WorkflowGroupsOut(**vars(c)) for c in counts],
        groups=[FailureGroupOut(**r, retries=_retries(r)) for r in rows],
    )


def project_groups(
    conn: DbConnection, project: ProjectDetail, q: GroupQuery, workflow_id: UUID | None = None
) -> FailureGroupsOut:
    """A page of the project's groups (``workflow_id``: one of its workflows only; another
    project's workflow is a 422, a workflow one cannot see a 404)."""
    if workflow_id is not None:
        wf = views.workflow(conn, workflow_id)  # 404 unless readable
        if wf.project_id != project.id:
            raise Unprocessable(
                f"workflow_id: workflow {workflow_id} is not a workflow of project {project.id}"
            )
    counts = db.group_counts(conn, GroupScope(project.id))
    return _answer(conn, GroupScope(project.id, workflow_id), counts, q)


def workflow_groups(conn: DbConnection, wf: WorkflowOut, q: GroupQuery) -> FailureGroupsOut:
    """A page of the workflow's groups (none unless the caller owns it)."""
    scope = GroupScope(None, wf.id)
    return _answer(conn, scope, db.group_counts(conn, scope), q)


@router.get("/projects/{project_id}/failure-groups", response_model=FailureGroupsOut)
def get_project_failure_groups(
    project_id: UUID, conn: UserConn, q: Listing, workflow_id: WorkflowFilter = None
) -> FailureGroupsOut:
    """One page of the project's failure groups, newest (last seen) or biggest (most
    failures) first, with the total and the groups per workflow."""
    return project_groups(conn, views.project_detail(conn, project_id), q, workflow_id)


@router.get("/workflows/{workflow_id}/failure-groups", response_model=FailureGroupsOut)
def get_workflow_failure_groups(workflow_id: UUID, conn: UserConn, q: Listing) -> FailureGroupsOut:
    """One page of the workflow's failure groups (empty unless you own the workflow)."""
    return workflow_groups(conn, views.workflow(conn, workflow_id), q)


def sparkline(values: list[int], width: int = 112, height: int = 24) -> dict[str, Any]:
    """An inline SVG sparkline: one bar per day, scaled to the largest day, drawn as ONE
    path (``d``: numbers only) rather than an element per bar, so a page of groups stays
    small and quick to render; ``label`` lists the counts (aria-label and tooltip)."""
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    bar = round(step * 0.8, 2)
    d = []
    for i, v in enumerate(values):
        if v:
            h = round(max(2.0, height * v / top), 2)
            d.append(f"M{round(i * step, 2)} {height}v-{h}h{bar}v{h}z")
    return {"width": width, "height": height, "d": "".join(d),
            "label": ", ".join(map(str, values))}  # fmt: skip


def _failures_page(request: Request, data: FailureGroupsOut, **scope: Any) -> Response:
    """The failure groups page of a project or a workflow (``scope`` names which)."""
    return render_page(
        request,
        "failures.html",
        data=data,
        items=[(g, sparkline(g.per_day)) for g in data.groups],
        spark_days=SPARK_DAYS,
        default_page_size=DEFAULT_PAGE_SIZE,
        **scope,
    )


@pages.get("/projects/{project_id}/failures", response_class=HTMLResponse)
def project_failures_page(
    request: Request,
    conn: UserConn,
    project_id: UUID,
    q: Listing,
    workflow_id: WorkflowFilter = None,
) -> Response:
    project = views.project_detail(conn, project_id)
    return _failures_page(
        request,
        project_groups(conn, project, q, workflow_id),
        scope="project",
        title=project.name,
        base=f"/projects/{project_id}",
        project=project,
    )


@pages.get("/workflows/{workflow_id}/failures", response_class=HTMLResponse)
def workflow_failures_page(
    request: Request, conn: UserConn, workflow_id: UUID, q: Listing
) -> Response:
    wf = views.workflow(conn, workflow_id)
    return _failures_page(
        request,
        workflow_groups(conn, wf, q),
        scope="workflow",
        title=wf.name,
        base=f"/workflows/{workflow_id}",
        wf=wf,
    )
