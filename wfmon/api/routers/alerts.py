"""Alert rules of a project, their delivery log and test alerts: JSON API and pages.

API: ``GET|POST /api/projects/{id}/alert-rules``, ``GET|PATCH|DELETE
/api/alert-rules/{id}``, ``POST /api/alert-rules/{id}/test``,
``GET /api/projects/{id}/alert-deliveries`` and ``GET /api/alert-rules/{id}/deliveries``.
Page: ``/projects/{id}/alerts`` (its forms call the same endpoints). Row-level security
shows a project's rules and deliveries to the project's owner only: for anyone else they
do not exist (404). Channel secrets are accepted, never returned: answers carry
``channel_masked`` and the channel's non-secret settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from wfmon.alerts import rules as service
from wfmon.alerts.delivery import send_test_alert
from wfmon.alerts.errors import InvalidRule, RuleConflict, RuleNotFound
from wfmon.alerts.model import PARAMS, AlertKind, Channel, ChannelType, DeliveryStatus
from wfmon.api import views
from wfmon.api.deps import Context, CurrentUser, UserConn
from wfmon.api.errors import ERROR_RESPONSES, Conflict, ErrorBody, NotFound, Unprocessable
from wfmon.api.html import render_page
from wfmon.api.inputs import RequestBody, SingleLineText, StoredJson
from wfmon.api.models import ProjectDetail
from wfmon.db import DbConnection
from wfmon.db import alerts as db

router = APIRouter(prefix="/api", tags=["alerts"], responses=ERROR_RESPONSES)
pages = APIRouter(include_in_schema=False)

MAX_DELIVERIES = 200
Limit = Annotated[int, Query(ge=1, le=MAX_DELIVERIES, description="Most deliveries listed.")]
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Name already used in the project"}
}


class RuleCreate(RequestBody):
    """A new rule. ``params`` depend on ``kind`` (docs/user-guide/alerts.md)."""

    name: SingleLineText = Field(min_length=1, max_length=200)
    kind: AlertKind
    params: StoredJson = Field(default_factory=dict)
    workflow_id: UUID | None = Field(None, description="Only this workflow (None: all).")
    channel: Channel
    quiet_period_seconds: int = Field(0, ge=0, le=service.MAX_QUIET_PERIOD_SECONDS)
    enabled: bool = True


class RuleUpdate(RequestBody):
    """Fields to change; a new ``channel`` replaces the old one (secret included)."""

    name: SingleLineText | None = Field(None, min_length=1, max_length=200)
    kind: AlertKind | None = None
    params: StoredJson | None = None
    workflow_id: UUID | None = None
    channel: Channel | None = None
    quiet_period_seconds: int | None = Field(None, ge=0, le=service.MAX_QUIET_PERIOD_SECONDS)
    enabled: bool | None = None


class RuleOut(BaseModel):
    """A rule; its channel's secret part is never shown (``channel_masked`` only)."""

    id: UUID
    project_id: UUID
    workflow_id: UUID | None
    workflow_name: str | None
    name: str
    kind: AlertKind
    params: dict[str, Any]
    channel_type: ChannelType
    channel_settings: dict[str, Any] = Field(description="The channel's non-secret settings.")
    channel_masked: str
    quiet_period_seconds: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


class DeliveryOut(BaseModel):
    """One row of the delivery log."""

    id: UUID
    rule_id: UUID
    rule_name: str
    channel_type: ChannelType
    status: DeliveryStatus
    reason: str | None = Field(description="Why it failed or was suppressed (no secrets).")
    test: bool
    title: str
    link: str | None
    execution_id: UUID | None
    attempts: int
    next_attempt_at: datetime | None = Field(description="Next retry (None: no more).")
    sent_at: datetime | None
    created_at: datetime


class TestAlertOut(BaseModel):
    """Outcome of a test alert (also recorded in the delivery log)."""

    ok: bool
    delivery: DeliveryOut


TestAlertOut.__test__ = False  # type: ignore[attr-defined]  # not a pytest class


def _rule_out(info: service.RuleInfo) -> RuleOut:
    return RuleOut(
        id=info.id,
        project_id=info.project_id,
        workflow_id=info.workflow_id,
        workflow_name=info.workflow_name,
        name=info.name,
        kind=info.kind,
        params=info.params,
        channel_type=info.channel_type,
        channel_settings=info.channel_config,
        channel_masked=info.channel_masked,
        quiet_period_seconds=info.quiet_period_seconds,
        enabled=info.enabled,
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


def delivery_out(row: dict[str, Any]) -> DeliveryOut:
    alert = row["alert"] or {}
    return DeliveryOut(
        id=row["id"],
        rule_id=row["rule_id"],
        rule_name=row["rule_name"],
        channel_type=row["channel_type"],
        status=row["status"],
        reason=row["reason"],
        test=row["is_test"],
        title=str(alert.get("title", "")),
        link=alert.get("link"),
        execution_id=row["execution_id"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        sent_at=row["sent_at"],
        created_at=row["created_at"],
    )


@contextmanager
def _answers() -> Iterator[None]:
    """The service's errors as API errors (404, 409, 422)."""
    try:
        yield
    except RuleNotFound as exc:
        raise NotFound(str(exc)) from None
    except RuleConflict as exc:
        raise Conflict(str(exc)) from None
    except InvalidRule as exc:
        raise Unprocessable(str(exc)) from None


def _project(conn: DbConnection, project_id: UUID) -> ProjectDetail:
    return views.project_detail(conn, project_id)  # 404 unless the caller's project


@router.get("/projects/{project_id}/alert-rules", response_model=list[RuleOut])
def list_rules(project_id: UUID, conn: UserConn) -> list[RuleOut]:
    _project(conn, project_id)
    return [_rule_out(r) for r in service.list_rules(conn, project_id)]


@router.post(
    "/projects/{project_id}/alert-rules",
    response_model=RuleOut,
    status_code=201,
    responses=_CONFLICT,
)
def create_rule(project_id: UUID, body: RuleCreate, ctx: Context, conn: UserConn) -> RuleOut:
    """Validate, encrypt the channel's secret and store the rule."""
    _project(conn, project_id)
    with _answers():
        info = service.create_rule(
            conn,
            project_id=project_id,
            name=body.name,
            kind=body.kind,
            params=body.params,
            channel=body.channel,
            keyring=ctx.require_keyring(),
            workflow_id=body.workflow_id,
            quiet_period_seconds=body.quiet_period_seconds,
            enabled=body.enabled,
            policy=ctx.policy,
        )
    return _rule_out(info)


@router.get("/alert-rules/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: UUID, conn: UserConn) -> RuleOut:
    with _answers():
        return _rule_out(service.get_rule(conn, rule_id))


@router.patch("/alert-rules/{rule_id}", response_model=RuleOut, responses=_CONFLICT)
def update_rule(rule_id: UUID, body: RuleUpdate, ctx: Context, conn: UserConn) -> RuleOut:
    """Change the fields sent; the others keep their values."""
    changes = body.model_dump(exclude_unset=True, exclude={"channel"})
    for field in ("name", "kind", "params", "quiet_period_seconds", "enabled"):
        if field in changes and changes[field] is None:
            raise Unprocessable(f"body.{field}: may not be null")
    with _answers():
        info = service.update_rule(
            conn,
            rule_id,
            keyring=ctx.require_keyring(),
            changes=changes,
            channel=body.channel,
            policy=ctx.policy,
        )
    return _rule_out(info)


@router.delete("/alert-rules/{rule_id}", status_code=204, response_class=Response)
def delete_rule(rule_id: UUID, conn: UserConn) -> Response:
    """Delete the rule and its delivery log."""
    with _answers():
        service.delete_rule(conn, rule_id)
    return Response(status_code=204)


@router.post("/alert-rules/{rule_id}/test", response_model=TestAlertOut)
async def test_rule(
    rule_id: UUID, request: Request, ctx: Context, user: CurrentUser
) -> TestAlertOut:
    """Send a test alert over the rule's channel now and record it in the delivery log.
    A channel that fails is a 200 with ``ok: false`` and the (sanitized) reason."""
    keyring = ctx.require_keyring()
    base_url = str(request.base_url)
    with _answers():
        result = await run_in_threadpool(
            send_test_alert,
            ctx.db,
            user.auth_user_id,
            rule_id,
            keyring=keyring,
            policy=ctx.policy,
            base_url=base_url,
        )
    return TestAlertOut(ok=result.ok, delivery=delivery_out(result.delivery))


@router.get("/projects/{project_id}/alert-deliveries", response_model=list[DeliveryOut])
def project_deliveries(project_id: UUID, conn: UserConn, limit: Limit = 50) -> list[DeliveryOut]:
    """The project's delivery log, newest first."""
    _project(conn, project_id)
    return [delivery_out(r) for r in db.list_deliveries(conn, project_id, limit=limit)]


@router.get("/alert-rules/{rule_id}/deliveries", response_model=list[DeliveryOut])
def rule_deliveries(rule_id: UUID, conn: UserConn, limit: Limit = 50) -> list[DeliveryOut]:
    """One rule's delivery log, newest first."""
    with _answers():
        rule = service.get_rule(conn, rule_id)
    rows = db.list_deliveries(conn, rule.project_id, rule_id=rule.id, limit=limit)
    return [delivery_out(r) for r in rows]


# -- page -------------------------------------------------------------------------------------

_KIND_WORDS: dict[AlertKind, str] = {
    AlertKind.EXECUTION_FAILED: "An execution fails (or N in a row)",
    AlertKind.UNEXPECTED_RETRY: "An unexpected retry",
    AlertKind.NEW_FAILURE_GROUP: "A new failure group appears",
    AlertKind.FAILURE_RATE: "Failure rate over a window above X %",
    AlertKind.RUNNING_EXECUTION: "A running execution retries > N times or runs > T",
}


#: What the page's form starts with for each kind (a running-execution rule needs a limit).
_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    k.value: PARAMS[k]().model_dump() for k in AlertKind if k != AlertKind.RUNNING_EXECUTION
} | {AlertKind.RUNNING_EXECUTION.value: {"max_retries": 3, "max_seconds": 3600}}


@pages.get("/projects/{project_id}/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, ctx: Context, conn: UserConn, project_id: UUID) -> Response:
    project = _project(conn, project_id)
    return render_page(
        request,
        "alerts.html",
        project=project,
        rules=[_rule_out(r) for r in service.list_rules(conn, project_id)],
        deliveries=[delivery_out(r) for r in db.list_deliveries(conn, project_id, limit=50)],
        kinds=[(k.value, _KIND_WORDS[k]) for k in AlertKind],
        defaults=_DEFAULT_PARAMS,
        enabled=ctx.keyring is not None,
        keyring_error=ctx.keyring_error,
    )
