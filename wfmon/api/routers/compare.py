"""Compare two runs: ``GET /api/executions/{id}/compare?with=<other id>`` (JSON), the
picker's choices (``.../compare/candidates``) and the page ``/executions/{id}/compare``.

Without ``with`` the baseline is the last successful run of the same workflow version
before this one. Everything is read under the caller's row-level security: an execution
the caller cannot see is a 404 whichever side it is on.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from wfmon.api import compare_view
from wfmon.api.compare_models import (
    DEFAULT_CHANGE_LIMIT,
    MAX_CHANGE_LIMIT,
    CandidatesOut,
    CompareOut,
)
from wfmon.api.deps import UserConn
from wfmon.api.errors import ERROR_RESPONSES, NotFound
from wfmon.api.html import render_page

router = APIRouter(responses=ERROR_RESPONSES)

With = Annotated[
    UUID | None,
    Query(
        alias="with",
        description="the execution to compare with (default: the last successful run of "
        "the same workflow version before this one)",
    ),
]
ChangedOnly = Annotated[
    bool, Query(description="leave out nodes where nothing but the duration differs")
]
ChangeLimit = Annotated[
    int, Query(ge=1, le=MAX_CHANGE_LIMIT, description="changes listed per payload per node")
]

#: Node rows the page renders at most (the API returns them all).
PAGE_ROWS = 500


@router.get(
    "/api/executions/{execution_id}/compare", response_model=CompareOut, tags=["executions"]
)
def compare_api(
    execution_id: UUID,
    conn: UserConn,
    with_: With = None,
    changed_only: ChangedOnly = False,
    limit: ChangeLimit = DEFAULT_CHANGE_LIMIT,
) -> Response:
    """This execution against another of the same workflow, node by node: status,
    duration and its change, attempts, error, and structural diffs of input and output
    (changed paths with old and new values); nodes that ran in only one of the runs; and,
    when the runs used different definition versions, which node settings changed."""
    body = compare_view.compare_json(
        conn, execution_id, with_, changed_only=changed_only, limit=limit
    )
    return Response(body, media_type="application/json")


@router.get(
    "/api/executions/{execution_id}/compare/candidates",
    response_model=CandidatesOut,
    tags=["executions"],
)
def compare_candidates(execution_id: UUID, conn: UserConn) -> CandidatesOut:
    """What "compare with…" offers: the default baseline and recent executions of the
    same workflow."""
    return compare_view.candidates(conn, execution_id)


@router.get(
    "/executions/{execution_id}/compare", response_class=HTMLResponse, include_in_schema=False
)
def compare_page(
    request: Request,
    execution_id: UUID,
    conn: UserConn,
    with_: With = None,
    show_all: Annotated[bool, Query(alias="all", description="show unchanged nodes too")] = False,
) -> Response:
    choices = compare_view.candidates(conn, execution_id)
    try:
        result = compare_view.compare_executions(
            conn, execution_id, with_, changed_only=not show_all, max_nodes=PAGE_ROWS
        )
    except NotFound as exc:
        if with_ is not None:
            raise
        # No default partner: say so, and offer the picker.
        return render_page(
            request,
            "compare.html",
            status_code=404,
            c=None,
            message=exc.message,
            choices=choices,
            execution_id=execution_id,
            selected=None,
            show_all=show_all,
            page_rows=PAGE_ROWS,
        )
    return render_page(
        request,
        "compare.html",
        c=result,
        message=None,
        choices=choices,
        execution_id=execution_id,
        selected=result["baseline"]["id"],
        show_all=show_all,
        page_rows=PAGE_ROWS,
    )
