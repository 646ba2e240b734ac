"""Failure groups: failures grouped by workflow, node and error fingerprint.

``GET /api/projects/{id}/failure-groups`` and ``GET /api/workflows/{id}/failure-groups``
(``sort=newest|biggest``), and the pages ``/projects/{id}/failures`` and
``/workflows/{id}/failures``. The groups are built by the data platform (the dbt models
``failure_group_days`` / ``failure_groups``, Dagster asset ``failure_groups``); each answer
says when they were last built. Row-level security shows a workflow's groups to its owner
only (migrations/0410).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from wfmon.api import views
from wfmon.api.deps import UserConn
from wfmon.api.errors import ERROR_RESPONSES
from wfmon.api.html import render_page
from wfmon.db import DbConnection
from wfmon.db import failures as db
from wfmon.db.failures import MAX_GROUPS, SPARK_DAYS, GroupSort

#: Groups listed unless ``limit`` says otherwise (the biggest or newest ones).
DEFAULT_GROUPS = 50
Limit = Annotated[int, Query(ge=1, le=MAX_GROUPS, description="Most groups listed.")]

router = APIRouter(prefix="/api", tags=["failures"], responses=ERROR_RESPONSES)
pages = APIRouter(include_in_schema=False)


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


class FailureGroupsOut(BaseModel):
    """Failure groups of a project or a workflow, and when they were last built."""

    sort: GroupSort
    built_at: datetime | None = Field(description="Last build of the groups (None: never).")
    groups: list[FailureGroupOut]


def _retries(row: dict[str, Any]) -> str:
    if not row["retried_failures"]:
        return "none"
    return "expected" if row["expected_retry_failures"] == row["retried_failures"] else "unexpected"


def _answer(conn: DbConnection, rows: list[dict[str, Any]], sort: GroupSort) -> FailureGroupsOut:
    groups = [FailureGroupOut(**r, retries=_retries(r)) for r in rows]
    return FailureGroupsOut(sort=sort, built_at=db.last_built(conn), groups=groups)


def project_groups(
    conn: DbConnection, project_id: UUID, sort: GroupSort, limit: int = DEFAULT_GROUPS
) -> FailureGroupsOut:
    views.project_detail(conn, project_id)  # 404 unless the caller's project
    rows = db.project_failure_groups(conn, project_id, sort=sort, limit=limit)
    return _answer(conn, rows, sort)


def workflow_groups(
    conn: DbConnection, workflow_id: UUID, sort: GroupSort, limit: int = DEFAULT_GROUPS
) -> FailureGroupsOut:
    views.workflow(conn, workflow_id)  # 404 unless readable
    rows = db.workflow_failure_groups(conn, workflow_id, sort=sort, limit=limit)
    return _answer(conn, rows, sort)


@router.get("/projects/{project_id}/failure-groups", response_model=FailureGroupsOut)
def get_project_failure_groups(
    project_id: UUID,
    conn: UserConn,
    sort: GroupSort = GroupSort.NEWEST,
    limit: Limit = DEFAULT_GROUPS,
) -> FailureGroupsOut:
    """The project's failure groups, newest (last seen) or biggest (most failures) first."""
    return project_groups(conn, project_id, sort, limit)


@router.get("/workflows/{workflow_id}/failure-groups", response_model=FailureGroupsOut)
def get_workflow_failure_groups(
    workflow_id: UUID,
    conn: UserConn,
    sort: GroupSort = GroupSort.NEWEST,
    limit: Limit = DEFAULT_GROUPS,
) -> FailureGroupsOut:
    """The workflow's failure groups (empty unless you own the workflow)."""
    return workflow_groups(conn, workflow_id, sort, limit)


def sparkline(values: list[int], width: int = 112, height: int = 24) -> dict[str, Any]:
    """Bars of an inline SVG sparkline: one per day, scaled to the largest day."""
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    bars = []
    for i, v in enumerate(values):
        h = 0 if v == 0 else max(2.0, height * v / top)
        bars.append({"x": round(i * step, 2), "y": round(height - h, 2), "h": round(h, 2),
                     "w": round(step * 0.8, 2), "v": v})  # fmt: skip
    return {"width": width, "height": height, "bars": bars}


def _failures_page(request: Request, data: Any, limit: int, **scope: Any) -> Response:
    """The failure groups page of a project or a workflow (``scope`` names which)."""
    return render_page(
        request,
        "failures.html",
        data=data,
        items=[(g, sparkline(g.per_day)) for g in data.groups],
        spark_days=SPARK_DAYS,
        limit=limit,
        **scope,
    )


@pages.get("/projects/{project_id}/failures", response_class=HTMLResponse)
def project_failures_page(
    request: Request,
    conn: UserConn,
    project_id: UUID,
    sort: GroupSort = GroupSort.NEWEST,
    limit: Limit = DEFAULT_GROUPS,
) -> Response:
    project = views.project_detail(conn, project_id)
    return _failures_page(
        request,
        project_groups(conn, project_id, sort, limit),
        limit,
        scope="project",
        title=project.name,
        base=f"/projects/{project_id}",
        project=project,
    )


@pages.get("/workflows/{workflow_id}/failures", response_class=HTMLResponse)
def workflow_failures_page(
    request: Request,
    conn: UserConn,
    workflow_id: UUID,
    sort: GroupSort = GroupSort.NEWEST,
    limit: Limit = DEFAULT_GROUPS,
) -> Response:
    wf = views.workflow(conn, workflow_id)
    return _failures_page(
        request,
        workflow_groups(conn, workflow_id, sort, limit),
        limit,
        scope="workflow",
        title=wf.name,
        base=f"/workflows/{workflow_id}",
        wf=wf,
    )
