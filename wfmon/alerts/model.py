"""Alert rules as data: their kinds and parameters, channels, delivery statuses, and the
alert message itself.

The values of :class:`AlertKind`, :class:`ChannelType` and :class:`DeliveryStatus` are the
``CHECK`` constraints of ``alert_rules`` / ``alert_deliveries`` (migrations/0500). What
"counts as a failure" is :data:`wfmon.model.FAILURE_STATUSES`, nowhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wfmon.alerts.errors import InvalidRule

#: Version of the webhook body (docs/user-guide/alerts.md documents it).
WEBHOOK_SCHEMA: Final = "wfmon.alert/v1"


class AlertKind(StrEnum):
    """What a rule watches."""

    #: A workflow's execution closed as a failure (or the N-th one in a row did).
    EXECUTION_FAILED = "execution_failed"
    #: A component retried although its retry policy did not expect it.
    UNEXPECTED_RETRY = "unexpected_retry"
    #: A failure group (workflow, node, error fingerprint) appeared.
    NEW_FAILURE_GROUP = "new_failure_group"
    #: A workflow's failure rate over a window went above a threshold.
    FAILURE_RATE = "failure_rate"
    #: A running execution retried more than N times, or has run longer than T.
    RUNNING_EXECUTION = "running_execution"


class ChannelType(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    #: Recorded, not tried yet.
    PENDING = "pending"
    SENT = "sent"
    #: The last attempt failed (``reason`` says why); retried while ``next_attempt_at`` is set.
    FAILED = "failed"
    #: Not sent: a duplicate of an alert already delivered, or inside the quiet period.
    SUPPRESSED = "suppressed"


# -- parameters per kind ----------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExecutionFailedParams(_Params):
    consecutive: int = Field(
        1, ge=1, le=100, description="Alert on the N-th failure in a row (1: every failure)."
    )


class NoParams(_Params):
    pass


class FailureRateParams(_Params):
    window_minutes: int = Field(60, ge=1, le=10080, description="Window of close times.")
    threshold_percent: float = Field(
        50, ge=0, lt=100, description="Alert when the failure rate is ABOVE this."
    )
    min_executions: int = Field(
        5, ge=1, le=100000, description="Closed executions needed in the window."
    )


class RunningExecutionParams(_Params):
    max_retries: int | None = Field(
        None, ge=0, le=1000, description="Alert when a component retried more than this."
    )
    max_seconds: int | None = Field(
        None, ge=1, le=30 * 86400, description="Alert when running longer than this."
    )

    @model_validator(mode="after")
    def _one_limit(self) -> RunningExecutionParams:
        if self.max_retries is None and self.max_seconds is None:
            raise ValueError("set max_retries, max_seconds or both")
        return self


PARAMS: Final[dict[AlertKind, type[_Params]]] = {
    AlertKind.EXECUTION_FAILED: ExecutionFailedParams,
    AlertKind.UNEXPECTED_RETRY: NoParams,
    AlertKind.NEW_FAILURE_GROUP: NoParams,
    AlertKind.FAILURE_RATE: FailureRateParams,
    AlertKind.RUNNING_EXECUTION: RunningExecutionParams,
}


def parse_kind(value: str) -> AlertKind:
    try:
        return AlertKind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in AlertKind)
        raise InvalidRule(f"kind must be one of {allowed}, not {value!r}") from None


def parse_params(kind: AlertKind, raw: dict[str, Any] | None) -> dict[str, Any]:
    """The rule's parameters, validated for ``kind`` and with defaults filled in.

    Raises :class:`InvalidRule` naming the parameter that is wrong."""
    try:
        return PARAMS[kind].model_validate(raw or {}).model_dump()
    except ValidationError as exc:
        problems = "; ".join(
            f"params.{'.'.join(str(p) for p in e['loc']) or kind.value}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise InvalidRule(problems) from None


# -- channels (what the API accepts) ---------------------------------------------------------


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookChannel(_Channel):
    """A URL that receives the alert as JSON, signed with HMAC-SHA256."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(max_length=2048, description="http(s) URL; kept secret.")
    signing_secret: str = Field(
        min_length=16, max_length=256, description="Key of the X-Wfmon-Signature HMAC."
    )


class SlackChannel(_Channel):
    """A Slack (or compatible: Mattermost, Rocket.Chat) incoming-webhook URL."""

    type: Literal["slack"] = "slack"
    url: str = Field(max_length=2048, description="Incoming-webhook URL; kept secret.")


class EmailChannel(_Channel):
    """E-mail over SMTP."""

    type: Literal["email"] = "email"
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(None, max_length=320)
    password: str | None = Field(None, max_length=1024, description="Kept secret.")
    sender: str = Field(min_length=3, max_length=320, description="From address.")
    recipients: list[str] = Field(min_length=1, max_length=20)


Channel = Annotated[WebhookChannel | SlackChannel | EmailChannel, Field(discriminator="type")]


# -- the alert ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One alert as every channel renders it. Holds no secret (it is stored in the log)."""

    kind: str
    title: str
    text: str
    rule_id: UUID
    rule_name: str
    project_id: UUID
    project_name: str
    occurred_at: datetime
    workflow_id: UUID | None = None
    workflow_name: str | None = None
    execution_id: UUID | None = None
    temporal_workflow_id: str | None = None
    status: str | None = None
    link: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    test: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (what ``alert_deliveries.alert`` stores)."""
        out = asdict(self)
        for key in ("rule_id", "project_id", "workflow_id", "execution_id"):
            out[key] = None if out[key] is None else str(out[key])
        out["occurred_at"] = self.occurred_at.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alert:
        values = dict(data)
        for key in ("rule_id", "project_id", "workflow_id", "execution_id"):
            values[key] = None if values.get(key) is None else UUID(str(values[key]))
        values["occurred_at"] = datetime.fromisoformat(str(values["occurred_at"]))
        return cls(**values)


@dataclass(frozen=True)
class Candidate:
    """What the evaluator found for a rule: one event about one subject."""

    #: The event (looked at once per rule).
    event_key: str
    #: The subject (alerted once per rule).
    dedupe_key: str
    alert: Alert
