"""Workflows: the workflow, its execution history (paged, filtered, sorted), statistics."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from wfmon.api import views
from wfmon.api.deps import UserConn
from wfmon.api.errors import ERROR_RESPONSES
from wfmon.api.models import (
    MAX_PAGE,
    ExecutionPageOut,
    WorkflowOut,
    WorkflowStatsOut,
    json_response,
)
from wfmon.model import DEFAULT_EXECUTION_SORT, ExecutionSort, ExecutionStatus

router = APIRouter(prefix="/api/workflows", tags=["workflows"], responses=ERROR_RESPONSES)

#: The history page size is bounded well below the database's own bound.
MAX_HISTORY_PAGE_SIZE = 100


@router.get("/{workflow_id}", response_model=WorkflowOut)
def get_workflow(workflow_id: UUID, conn: UserConn) -> WorkflowOut:
    """A workflow you own, or a public one."""
    return views.workflow(conn, workflow_id)


@router.get("/{workflow_id}/executions", response_model=ExecutionPageOut)
def list_executions(
    workflow_id: UUID,
    conn: UserConn,
    status: Annotated[ExecutionStatus | None, Query(description="only this status")] = None,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE_SIZE)] = 20,
) -> Response:
    """Your executions of this workflow, one page at a time, with component and error
    counts and each run's sync status."""
    return json_response(
        views.execution_page(
            conn, workflow_id, status=status, page=page, page_size=page_size, sort=sort
        )
    )


@router.get("/{workflow_id}/statistics", response_model=WorkflowStatsOut)
def get_statistics(workflow_id: UUID, conn: UserConn) -> WorkflowStatsOut:
    """The statistics table's figures (``stored``, None until built) and live figures over
    the executions you may see, with a daily trend over the last 30 days."""
    return views.workflow_stats(conn, workflow_id)
