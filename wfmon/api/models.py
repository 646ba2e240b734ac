"""Request and response models of the HTTP API (what the OpenAPI document describes)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from typing import Any, Literal
from uuid import UUID

import orjson
from fastapi import Response
from pydantic import BaseModel, Field

from wfmon.api.inputs import RequestBody, SingleLineText, StoredJson
from wfmon.db.executions import MAX_PAGE_SIZE
from wfmon.db.reruns import RerunKind
from wfmon.model import ComponentStatus, ExecutionStatus

# Statuses and sort orders are wfmon's vocabulary (wfmon.model.vocabulary): the models
# and the routes' query parameters are typed with those enums, so the OpenAPI document
# lists their values.

MAX_PAGE: int = 1_000_000
MAX_COMPONENT_LIMIT: int = 500
DEFAULT_COMPONENT_LIMIT: int = 100
assert MAX_PAGE_SIZE >= 100


def json_response(
    value: BaseModel | Mapping[str, Any],
    status_code: int = 200,
    *,
    model: type[BaseModel] | None = None,
) -> Response:
    """``value`` serialised once (:func:`dump_json`): a response model, or the plain
    fields of ``model``. Routes that return this skip FastAPI's response-model round trip
    (dump, validate again, dump), which costs more than the database reads on large pages;
    the route's ``response_model`` still documents it."""
    return Response(dump_json(value, model), status_code=status_code, media_type="application/json")


def dump_json(value: BaseModel | Mapping[str, Any], model: type[BaseModel] | None = None) -> bytes:
    """The JSON pydantic writes for ``value``: a model, or a mapping of the fields of
    ``model`` (plain values, models nested anywhere).

    orjson writes it, models field by field, several times faster than pydantic and
    byte for byte the same for what responses hold (str, int, float, bool, None, UUID,
    enums, dates and times with UTC as ``Z``, lists, dicts). Anything it would not write
    the same way makes it raise, and pydantic then writes the whole value: integers beyond
    64 bits, Decimal, dict keys that are not ``str``, a model with its own serialisation
    (aliases, serializers, computed or excluded fields).
    """
    try:
        return orjson.dumps(value, default=_model_fields, option=orjson.OPT_UTC_Z)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        if isinstance(value, BaseModel):
            return value.model_dump_json().encode()
        if model is None:
            raise
        return model.model_validate(value).model_dump_json().encode()


def _model_fields(value: object) -> dict[str, Any]:
    if isinstance(value, BaseModel) and _plain(type(value)):
        # A model's __dict__ holds exactly its fields, in declaration order.
        return value.__dict__
    raise TypeError(f"not written by orjson: {type(value).__name__}")


@cache
def _plain(cls: type[BaseModel]) -> bool:
    """True when pydantic writes ``cls`` as its fields by name, nothing else."""
    decorators = cls.__pydantic_decorators__
    return not (
        decorators.field_serializers
        or decorators.model_serializers
        or decorators.computed_fields
        or any(key.startswith("ser_") or key == "json_encoders" for key in cls.model_config)
        or any(f.alias or f.serialization_alias or f.exclude for f in cls.model_fields.values())
    )


class Me(BaseModel):
    auth_user_id: UUID
    user_id: UUID | None
    email: str | None


class ProjectOut(BaseModel):
    id: UUID
    name: str
    description: str
    created_at: datetime
    workflow_count: int


class WorkflowOut(BaseModel):
    id: UUID
    project_id: UUID
    name: str
    description: str
    visibility: str
    current_version: int
    node_count: int
    #: True when the caller owns it (False: a public workflow of someone else).
    owned: bool
    #: None when the project is not the caller's (a public workflow of someone else).
    project_name: str | None = None
    created_at: datetime
    updated_at: datetime


class ProjectDetail(ProjectOut):
    workflows: list[WorkflowOut]


class RerunMarkOut(BaseModel):
    """A listed execution that wfmon started from another: "run again" or "retry from the
    failed node" (``kind``) of ``source_execution_id``."""

    kind: RerunKind
    source_execution_id: UUID


class ExecutionListItem(BaseModel):
    id: UUID
    temporal_workflow_id: str
    temporal_run_id: str
    status: ExecutionStatus
    started_at: datetime
    closed_at: datetime | None
    duration_ms: int | None
    workflow_version: int | None
    component_count: int
    failed_components: int
    error_message: str | None
    history_sync_status: str
    #: Set when wfmon started this run from another (your own re-runs only).
    rerun_of: RerunMarkOut | None = None


class ExecutionPageOut(BaseModel):
    items: list[ExecutionListItem]
    total: int
    page: int
    page_size: int
    pages: int


class SyncInfo(BaseModel):
    status: str
    synced_at: datetime | None
    error: str | None
    event_count: int | None
    history_bytes: int | None
    #: True when this read triggered a sync (cache-aside).
    synced_now: bool = False


class ExecutionOut(BaseModel):
    id: UUID
    project_id: UUID
    workflow_id: UUID | None
    workflow_name: str | None
    workflow_version: int | None
    temporal_namespace: str
    temporal_workflow_id: str
    temporal_run_id: str
    workflow_type: str
    task_queue: str
    status: ExecutionStatus
    started_at: datetime
    closed_at: datetime | None
    duration_ms: int | None
    input: Any = None
    output: Any = None
    error_message: str | None
    sync: SyncInfo


class PolicyOut(BaseModel):
    """The retry policy Temporal recorded for the node, in the node's own words."""

    sentence: str
    strategy: str
    max_attempts: int = Field(description="0 = unlimited")
    recorded: dict[str, Any] | None


class AttemptOut(BaseModel):
    attempt: int
    label: str = Field(description='e.g. "attempt 2 of 3"')
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    outcome: str
    failure_type: str | None
    failure_message: str | None
    #: True when another attempt followed this one.
    retried: bool
    #: For a retried attempt: was the retry expected under the policy? None otherwise.
    retry_expected: bool | None
    explanation: str


class ComponentOut(BaseModel):
    id: UUID
    node_id: str
    component_name: str | None
    activity_type: str | None
    kind: str
    status: ComponentStatus
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    input: Any = None
    output: Any = None
    error_message: str | None
    error_type: str | None
    retry_count: int
    is_expected_retry: bool
    attempt: int
    next_retry_at: datetime | None
    retry_state: str | None
    policy: PolicyOut
    attempts: list[AttemptOut]
    retry_summary: str


class TimelineSegment(BaseModel):
    """A part of a component's bar, in percent of the execution's time span."""

    left: float
    width: float
    kind: Literal["attempt", "wait"]
    outcome: str
    label: str


class TimelineBar(BaseModel):
    component_id: UUID
    node_id: str
    status: ComponentStatus
    left: float
    width: float
    segments: list[TimelineSegment]


class TimelineOut(BaseModel):
    start: datetime
    end: datetime
    live: bool
    bars: list[TimelineBar]


class NotRunNodeOut(BaseModel):
    """A node of the definition that ran with no component execution (yet)."""

    node_id: str
    component: str
    #: True while the execution runs: the node may still start.
    waiting: bool
    #: Upstream nodes that had not completed (why it did not run or has not started).
    blocked_by: list[str]
    reason: str


class ExecutionDetailOut(BaseModel):
    execution: ExecutionOut
    component_total: int
    component_counts: dict[str, int]
    offset: int
    limit: int
    components: list[ComponentOut]
    timeline: TimelineOut
    #: Nodes of a wfmon workflow that never ran, in dependency order (empty for workflows
    #: not built with wfmon, whose nodes are not known).
    not_run: list[NotRunNodeOut] = []


class ComponentPageOut(BaseModel):
    total: int
    offset: int
    limit: int
    components: list[ComponentOut]


class SyncRequest(RequestBody):
    immediate: bool = Field(
        default=False, description="sync now and wait for it (true) or queue it (false)"
    )


class SyncOut(BaseModel):
    execution_id: UUID
    queued: bool
    outcome: str | None = None
    error: str | None = None
    component_count: int | None = None


class SyncStatusOut(BaseModel):
    execution_id: UUID
    execution_status: ExecutionStatus
    history_sync_status: str
    history_synced_at: datetime | None
    history_sync_error: str | None
    stale: bool


class CountItem(BaseModel):
    id: UUID | None = None
    name: str
    count: int
    failures: int = 0


class TrendPoint(BaseModel):
    day: date
    runs: int
    failures: int
    avg_duration_ms: int | None


class LiveStats(BaseModel):
    """Figures computed now from the executions the caller may see."""

    total_runs: int
    by_status: dict[str, int]
    failures: int
    avg_duration_ms: int | None
    max_duration_ms: int | None
    last_run_at: datetime | None
    top_components: list[CountItem]
    trend: list[TrendPoint]


class LongestRun(BaseModel):
    execution_id: UUID
    workflow_id: UUID | None
    workflow_name: str | None
    duration_ms: int


class WorkflowStatsOut(BaseModel):
    workflow_id: UUID
    #: The statistics table's row (built by the data platform); None until built.
    stored: dict[str, Any] | None
    #: Daily trend from the trend table (by close day); empty until built.
    stored_trend: list[TrendPoint] = []
    live: LiveStats


class ProjectStatsOut(BaseModel):
    project_id: UUID
    stored: dict[str, Any] | None
    stored_trend: list[TrendPoint] = []
    live: LiveStats
    top_workflows: list[CountItem]
    top_task_queues: list[CountItem]
    longest_run: LongestRun | None


class ConnectionOut(BaseModel):
    id: UUID
    project_id: UUID
    name: str
    connection_type: str
    masked_url: str
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ConnectionCreate(RequestBody):
    name: SingleLineText = Field(min_length=1, max_length=200)
    connection_type: Literal["postgresql", "redis"]
    url: SingleLineText = Field(
        min_length=1, max_length=4096, description="stored encrypted, never returned"
    )
    config: StoredJson | None = None


class ConnectionUpdate(RequestBody):
    name: SingleLineText | None = Field(default=None, min_length=1, max_length=200)
    url: SingleLineText | None = Field(default=None, min_length=1, max_length=4096)
    config: StoredJson | None = None


class ConnectionTestOut(BaseModel):
    ok: bool
    message: str
    error_type: str | None
    latency_ms: float
