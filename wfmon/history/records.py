"""What the history reader produces: one execution summary and its component executions.

Field names line up with the ``workflow_executions`` / ``component_executions`` columns.
Times are UTC datetimes taken from history ``event_time``; durations are computed from the
events' nanosecond timestamps, then rounded to whole milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from wfmon.model.vocabulary import ComponentStatus, ExecutionStatus


class ComponentKind(StrEnum):
    ACTIVITY = "activity"
    LOCAL_ACTIVITY = "local_activity"
    CHILD_WORKFLOW = "child_workflow"


class ErrorType(StrEnum):
    """``error_type`` values. Timeouts are ``"timeout:<kind>"`` (see :func:`timeout_error`)."""

    ACTIVITY_FAILURE = "activity_failure"
    RETRY_EXHAUSTED = "retry_exhausted"
    NON_RETRYABLE = "non_retryable"
    CANCELED = "canceled"
    CHILD_WORKFLOW_FAILURE = "child_workflow_failure"
    TERMINATED = "terminated"
    START_FAILED = "start_failed"
    #: The execution closed while this component was still open.
    ABANDONED = "abandoned"
    WORKFLOW_FAILURE = "workflow_failure"


def timeout_error(kind: str) -> str:
    """``"timeout:start_to_close"``, ``"timeout:heartbeat"``, ``"timeout:workflow_run"``..."""
    return f"timeout:{kind}"


@dataclass
class ComponentExecution:
    """One run of one component (node): an activity, a local activity or a child workflow.

    ``started_at`` is when the component was scheduled (its first attempt), so
    ``duration_ms`` spans every attempt; ``attempt_started_at`` is when the last attempt
    started. ``retry_count`` = ``temporal_attempt - 1``.
    """

    node_id: str
    component_name: str
    kind: ComponentKind
    activity_type: str
    #: ActivityTaskScheduled / MarkerRecorded / StartChildWorkflowExecutionInitiated event id.
    scheduled_event_id: int
    status: ComponentStatus
    temporal_activity_id: str | None = None
    temporal_attempt: int = 1
    retry_count: int = 0
    #: True only when retries happened AND the policy in force allowed them AND the
    #: component completed (or is still within its attempts). Exhausted / non-retryable /
    #: timed-out / canceled components did not have expected retries.
    is_expected_retry: bool = False
    started_at: datetime | None = None
    attempt_started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None
    #: Every argument, decoded (a list, even for one argument).
    input_data: list[Any] | None = None
    output_data: Any = None
    #: Why it did not complete. For a canceled component this includes the cancel details
    #: (``"canceled: ACTIVITY_ID_NOT_STARTED"``); details are never ``output_data``.
    error_message: str | None = None
    error_type: str | None = None
    #: The application's failure type (``ApplicationError.type`` / exception class).
    failure_type: str | None = None
    failure_stack: str | None = None
    #: Failure of the previous attempt (ActivityTaskStarted.last_failure / pending info).
    last_failure_message: str | None = None
    #: The retry policy Temporal recorded at scheduling, as a JSON-ready dict.
    retry_policy: dict[str, Any] | None = None
    #: Temporal's RetryState name without prefix, e.g. ``"maximum_attempts_reached"``.
    retry_state: str | None = None
    next_retry_at: datetime | None = None
    #: The workflow asked to cancel it: ActivityTaskCancelRequested for an activity, a
    #: RequestCancelExternalWorkflowExecutionInitiated naming a child workflow.
    cancel_requested: bool = False
    child_workflow_id: str | None = None
    child_run_id: str | None = None
    # Exact event times in ns since the epoch (datetimes above carry microseconds).
    started_at_ns: int | None = None
    completed_at_ns: int | None = None


@dataclass
class ExecutionSummary:
    """One workflow run, read from its history."""

    workflow_id: str | None
    run_id: str | None
    workflow_type: str | None
    status: ExecutionStatus
    task_queue: str | None = None
    namespace: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    duration_ms: int | None = None
    input_data: list[Any] | None = None
    output_data: Any = None
    error_message: str | None = None
    error_type: str | None = None
    failure_type: str | None = None
    retry_state: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    search_attributes: dict[str, Any] = field(default_factory=dict)
    wfmon_workflow_id: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    definition_version: int | None = None
    #: Chain of runs: the run this one continued from, and the run that continues it
    #: (continue-as-new, retry or cron). Follow ``next_run_id`` to read the whole chain.
    continued_from_run_id: str | None = None
    first_execution_run_id: str | None = None
    next_run_id: str | None = None
    parent_workflow_id: str | None = None
    parent_run_id: str | None = None
    attempt: int = 1
    event_count: int = 0
    last_event_id: int = 0


@dataclass
class HistoryReport:
    """The reader's whole answer. ``warnings`` lists what it could not interpret (unknown
    event types, references to events it never saw, payloads it could not decode)."""

    execution: ExecutionSummary
    components: list[ComponentExecution]
    warnings: list[str] = field(default_factory=list)
    #: Whether a value of the report may be a NaN or an infinite float, which JSON cannot
    #: hold (see ``PayloadDecoder.non_finite_possible``). False means none is.
    non_finite_possible: bool = False

    def component(self, node_id: str) -> ComponentExecution:
        """The last component execution of ``node_id`` (raises KeyError when none)."""
        for comp in reversed(self.components):
            if comp.node_id == node_id:
                return comp
        raise KeyError(node_id)
