"""Run again and retry from the failed node: the JSON API, the page forms, and what the
execution page offers (the ``_rerun.html`` partial).

The API and the page forms call the same :class:`~wfmon.rerun.RerunService`. Errors:
404 for an execution the caller cannot see, 403 for one they may see but did not start,
409 (``error`` = the :class:`~wfmon.rerun.Refusal`) when its state or type does not allow
it, 422 for a bad body, 503 when Temporal does not answer. Page forms answer 303 to the
new run's page (or to the old one until the new run is synced); errors are error pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from wfmon.api.deps import Context, CurrentUser, UserConn
from wfmon.api.errors import ERROR_RESPONSES, ApiError, ErrorBody, NotFound, Unprocessable
from wfmon.api.html import templates
from wfmon.api.models import ExecutionDetailOut, ExecutionOut, json_response
from wfmon.db import reruns as db
from wfmon.model import ComponentStatus
from wfmon.rerun import (
    Refusal,
    RerunError,
    RerunForbidden,
    RerunKind,
    RerunNotFound,
    RerunRefused,
    RerunResult,
    RerunService,
    RerunUnavailable,
    VersionChoice,
    refusal,
)

router = APIRouter(prefix="/api/executions", tags=["executions"], responses=ERROR_RESPONSES)
pages = APIRouter(include_in_schema=False)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Visible to you, but you did not start it"},
    409: {
        "model": ErrorBody,
        "description": "Not possible for this execution (`error` says why: still_running, "
        "not_failed, no_failed_node, already_retried, not_builder_workflow, ...)",
    },
}


# -- errors ---------------------------------------------------------------------------------


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"


class Refused(ApiError):
    status_code = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Unavailable(ApiError):
    status_code = 503
    code = "service_unavailable"


def _api_error(exc: RerunError) -> ApiError:
    if isinstance(exc, RerunNotFound):
        return NotFound(str(exc))
    if isinstance(exc, RerunForbidden):
        return Forbidden(str(exc))
    if isinstance(exc, RerunRefused):
        return Refused(exc.reason.value, str(exc))
    if isinstance(exc, RerunUnavailable):
        return Unavailable(str(exc))
    return ApiError(str(exc))


# -- models ---------------------------------------------------------------------------------


class RerunRequest(BaseModel):
    """``version``: run the definition version the execution ran (``same``) or the
    workflow's current one (``latest``)."""

    version: VersionChoice = VersionChoice.SAME


class RerunOut(BaseModel):
    """The new run. ``execution_id`` is null until wfmon has synced it (then ``url`` is
    its page; before that, the old execution's page, which links to it once synced)."""

    kind: RerunKind
    source_execution_id: UUID
    execution_id: UUID | None
    temporal_workflow_id: str
    temporal_run_id: str
    definition_version: int | None
    failed_node_id: str | None = Field(
        None, description="retry_from_failed: the node the run was reset to before"
    )
    url: str
    sync_error: str | None = None


class RerunLinkOut(BaseModel):
    kind: RerunKind
    created_at: datetime
    execution_id: UUID | None
    status: str | None
    started_at: datetime | None
    temporal_workflow_id: str
    temporal_run_id: str
    definition_version: int | None
    failed_node_id: str | None


class RerunLinksOut(BaseModel):
    """``rerun_of``: the execution this one was started from (by run again or retry);
    ``reruns``: the runs started from this one, oldest first."""

    rerun_of: RerunLinkOut | None
    reruns: list[RerunLinkOut]


def _out(result: RerunResult) -> RerunOut:
    target = result.execution_id or result.source_execution_id
    return RerunOut(
        kind=result.kind,
        source_execution_id=result.source_execution_id,
        execution_id=result.execution_id,
        temporal_workflow_id=result.temporal_workflow_id,
        temporal_run_id=result.temporal_run_id,
        definition_version=result.definition_version,
        failed_node_id=result.failed_node_id,
        url=f"/executions/{target}",
        sync_error=result.sync_error,
    )


def _link(link: db.RerunLink) -> RerunLinkOut:
    return RerunLinkOut(
        kind=RerunKind(link.kind),
        created_at=link.created_at,
        execution_id=link.execution_id,
        status=link.status,
        started_at=link.started_at,
        temporal_workflow_id=link.temporal_workflow_id,
        temporal_run_id=link.temporal_run_id,
        definition_version=link.definition_version,
        failed_node_id=link.failed_node_id,
    )


# -- the service calls, shared by the API and the pages -----------------------------------


async def _service(ctx: Context) -> RerunService:
    # The app's one Temporal client (connected on first use; 503 while Temporal is down).
    return RerunService(ctx.db, await ctx.temporal.client(), sync_timeout=ctx.sync_timeout)


async def _do(
    ctx: Context, user: CurrentUser, execution_id: UUID, kind: RerunKind, version: VersionChoice
) -> RerunResult:
    service = await _service(ctx)
    try:
        if kind is RerunKind.RETRY_FROM_FAILED:
            return await service.retry_from_failed(user.auth_user_id, execution_id)
        return await service.run_again(user.auth_user_id, execution_id, version)
    except RerunError as exc:
        raise _api_error(exc) from None


# -- JSON API ---------------------------------------------------------------------------------


@router.post("/{execution_id}/rerun", response_model=RerunOut, responses=_REFUSALS)
async def rerun(
    execution_id: UUID, ctx: Context, user: CurrentUser, body: RerunRequest | None = None
) -> RerunOut:
    """Run the execution again with the same input (a new execution), on the same
    definition version or the workflow's latest. Only for builder workflows, once ended."""
    version = body.version if body else VersionChoice.SAME
    return _out(await _do(ctx, user, execution_id, RerunKind.RUN_AGAIN, version))


@router.post("/{execution_id}/retry-from-failed", response_model=RerunOut, responses=_REFUSALS)
async def retry_from_failed(execution_id: UUID, ctx: Context, user: CurrentUser) -> RerunOut:
    """Retry from the failed node: Temporal resets the failed run to just before its
    (earliest) failed node was scheduled. Nodes that completed keep their results and do
    not run again; the failed node and everything downstream run again, in a new run of
    the same workflow id. Once per run."""
    result = await _do(ctx, user, execution_id, RerunKind.RETRY_FROM_FAILED, VersionChoice.SAME)
    return _out(result)


@router.get("/{execution_id}/reruns", response_model=RerunLinksOut)
def rerun_links(execution_id: UUID, conn: UserConn) -> RerunLinksOut:
    """The links of a re-run: where this execution came from, and what was started from it."""
    if db.source_execution(conn, execution_id) is None:
        raise NotFound(f"execution {execution_id} not found")
    source = db.rerun_source(conn, execution_id)
    return RerunLinksOut(
        rerun_of=_link(source) if source else None,
        reruns=[_link(r) for r in db.reruns_of(conn, execution_id)],
    )


# -- page forms -----------------------------------------------------------------------------


async def _form_version(request: Request) -> VersionChoice:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    value = (form.get("version") or [VersionChoice.SAME.value])[0]
    try:
        return VersionChoice(value)
    except ValueError:
        choices = ", ".join(v.value for v in VersionChoice)
        raise Unprocessable(f"version must be one of {choices}, not {value!r}") from None


def _to_page(request: Request, result: RerunResult) -> Response:
    """303 to the new run's page; the page's script asks for JSON instead (it then opens
    ``url`` itself, so the new page is rendered once, not for the fetch and again)."""
    out = _out(result)
    if "application/json" in request.headers.get("accept", ""):
        return json_response(out)
    return RedirectResponse(out.url, status_code=303)


@pages.post("/executions/{execution_id}/rerun")
async def rerun_form(
    execution_id: UUID, request: Request, ctx: Context, user: CurrentUser
) -> Response:
    version = await _form_version(request)
    return _to_page(request, await _do(ctx, user, execution_id, RerunKind.RUN_AGAIN, version))


@pages.post("/executions/{execution_id}/retry-from-failed")
async def retry_form(
    execution_id: UUID, request: Request, ctx: Context, user: CurrentUser
) -> Response:
    kind = RerunKind.RETRY_FROM_FAILED
    return _to_page(request, await _do(ctx, user, execution_id, kind, VersionChoice.SAME))


# -- what the execution page offers ------------------------------------------------------------

_FAILED_NODE_STATUSES = (ComponentStatus.FAILED, ComponentStatus.TIMED_OUT)


def rerun_offer(e: ExecutionOut, d: ExecutionDetailOut) -> dict[str, Any]:
    """For ``_rerun.html``: whether each button is offered and, when not, the sentence
    saying why (the service's own rules, :func:`wfmon.rerun.refusal`)."""
    failed_nodes = [c.node_id for c in d.components if c.status in _FAILED_NODE_STATUSES]
    has_failed = any(d.component_counts.get(s, 0) for s in _FAILED_NODE_STATUSES)

    def why_not(kind: RerunKind, has_failed_node: bool | None = None) -> RerunRefused | None:
        return refusal(
            kind,
            workflow_type=e.workflow_type,
            status=e.status,
            has_workflow=e.workflow_id is not None,
            has_failed_node=has_failed_node,
        )

    again = why_not(RerunKind.RUN_AGAIN)
    retry = why_not(RerunKind.RETRY_FROM_FAILED, has_failed)
    return {
        "run_again": again is None,
        "run_again_reason": str(again) if again else None,
        "retry": retry is None,
        "retry_reason": str(retry) if retry else None,
        "failed_nodes": failed_nodes,
        "not_builder": again is not None and again.reason is Refusal.NOT_BUILDER,
    }


templates.env.globals["rerun_offer"] = rerun_offer
