"""Needs attention: per project, what wants a look now.

``GET /api/projects/{id}/attention`` and the page ``/projects/{id}/attention``: executions
with a component retrying right now (attempt n of m, last error, next retry time, from the
component rows live sync keeps current), executions with unexpected retries, and workflows
whose last run failed and that have not succeeded since; each with its count (the project
page shows the counts). Row-level security: a user's own executions only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from wfmon.api import views
from wfmon.api.deps import UserConn
from wfmon.api.errors import ERROR_RESPONSES
from wfmon.api.html import render_page
from wfmon.api.retry_words import policy_from_recorded
from wfmon.db import DbConnection
from wfmon.db import attention as db

router = APIRouter(prefix="/api", tags=["attention"], responses=ERROR_RESPONSES)
pages = APIRouter(include_in_schema=False)


class RetryingOut(BaseModel):
    """A component retrying right now."""

    execution_id: UUID
    temporal_workflow_id: str
    workflow_id: UUID | None
    workflow_name: str | None
    node_id: str
    component_name: str | None
    attempt: int = Field(description="The attempt Temporal runs next (or is running).")
    max_attempts: int | None = Field(description="From the recorded retry policy; None: unlimited.")
    attempt_label: str = Field(description="'attempt 2 of 3' in the node's policy words.")
    policy: str = Field(description="The recorded retry policy, as a sentence.")
    next_retry_at: datetime | None
    last_error: str | None
    error_type: str | None


class UnexpectedOut(BaseModel):
    """An execution with unexpected retries."""

    execution_id: UUID
    temporal_workflow_id: str
    workflow_id: UUID | None
    workflow_name: str | None
    status: str
    started_at: datetime
    node_id: str
    component_name: str | None
    retry_count: int
    components: int = Field(description="Components of the execution with unexpected retries.")
    last_error: str | None


class FailingOut(BaseModel):
    """A workflow whose last run failed and that has not succeeded since."""

    workflow_id: UUID
    workflow_name: str
    execution_id: UUID
    status: str
    closed_at: datetime
    error_message: str | None
    last_success_at: datetime | None
    failures_since: int


class AttentionCounts(BaseModel):
    retrying: int
    unexpected_retries: int
    failing_workflows: int


class AttentionOut(BaseModel):
    """What needs attention in a project."""

    project_id: UUID
    counts: AttentionCounts
    retrying: list[RetryingOut]
    unexpected_retries: list[UnexpectedOut]
    failing_workflows: list[FailingOut]


def _retrying(row: dict[str, Any]) -> RetryingOut:
    policy = policy_from_recorded(row["retry_policy"])
    limit = policy.max_attempts
    return RetryingOut(
        **{
            k: row[k]
            for k in (
                "execution_id",
                "temporal_workflow_id",
                "workflow_id",
                "workflow_name",
                "node_id",
                "component_name",
                "next_retry_at",
                "error_type",
            )
        },
        attempt=row["temporal_attempt"],
        max_attempts=limit or None,
        attempt_label=policy.label(row["temporal_attempt"]),
        policy=policy.sentence,
        last_error=row["error_message"],
    )


def attention(conn: DbConnection, project_id: UUID) -> AttentionOut:
    views.project_detail(conn, project_id)  # 404 unless the caller's project
    retrying = [_retrying(r) for r in db.retrying_components(conn, project_id)]
    unexpected = [
        UnexpectedOut(**r, last_error=r["error_message"])
        for r in db.unexpected_retries(conn, project_id)
    ]
    failing = [FailingOut(**r) for r in db.failing_workflows(conn, project_id)]
    return AttentionOut(
        project_id=project_id,
        counts=AttentionCounts(
            retrying=len({r.execution_id for r in retrying}),
            unexpected_retries=len(unexpected),
            failing_workflows=len(failing),
        ),
        retrying=retrying,
        unexpected_retries=unexpected,
        failing_workflows=failing,
    )


@router.get("/projects/{project_id}/attention", response_model=AttentionOut)
def get_attention(project_id: UUID, conn: UserConn) -> AttentionOut:
    """Executions retrying now, executions with unexpected retries, and workflows failing
    since their last run (counts up to 100 of each)."""
    return attention(conn, project_id)


@pages.get("/projects/{project_id}/attention", response_class=HTMLResponse)
def attention_page(request: Request, conn: UserConn, project_id: UUID) -> Response:
    project = views.project_detail(conn, project_id)
    return render_page(request, "attention.html", project=project, a=attention(conn, project_id))
