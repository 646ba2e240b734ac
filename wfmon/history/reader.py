"""Read a Temporal history into an execution summary and its component executions.

:func:`read_history` is pure (no I/O): it takes events, optionally the definition that ran
and the pending activities of a running execution, and returns a :class:`HistoryReport`.
Events may come from a generator, page by page; the reader keeps one record per
component, never the events themselves, so memory grows with components, not events.

What it guarantees (see ``docs/architecture/history-reader.md``):

- activities are keyed by ``scheduled_event_id``; local activities by their marker event
  id; child workflows by their initiated event id;
- every time comes from ``event_time`` (nanoseconds kept for durations);
- builder workflows map ``activity_id`` to the node id (exact); other workflows use the
  activity id as node id and the activity type as component name;
- ``is_expected_retry`` and ``error_type`` come from the retry policy and ``retry_state``
  Temporal recorded, and the final outcome, never from today's node settings;
- unknown event types, references to unseen events and undecodable payloads end up in
  ``warnings``; nothing about the content of a history raises.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from google.protobuf.duration_pb2 import Duration as PbDuration
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payloads, RetryPolicy
from temporalio.api.enums.v1 import EventType, PendingActivityState, RetryState, TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadConverter

from wfmon.history.payloads import DEFAULT_PAYLOAD_LIMIT, PayloadDecoder
from wfmon.history.records import (
    ComponentExecution,
    ComponentKind,
    ErrorType,
    ExecutionSummary,
    HistoryReport,
    timeout_error,
)
from wfmon.model import (
    BUILDER_WORKFLOW_TYPE,
    ComponentStatus,
    ExecutionStatus,
    WorkflowDefinition,
    format_duration,
)

#: Marker names SDKs use for local activities (Core-based SDKs; Go and Java).
LOCAL_ACTIVITY_MARKERS = frozenset({"core_local_activity", "LocalActivity"})

#: Cancel details are shown in ``error_message``, cut to this many characters.
MAX_DETAILS_CHARS = 2000

#: Warnings kept per report; further ones are counted in a last line.
MAX_WARNINGS = 100

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OPEN = (ComponentStatus.PENDING, ComponentStatus.RUNNING, ComponentStatus.RETRYING)
#: The handler (a HistoryReader method) of each event type that matters. Built once: a
#: protobuf enum's attribute access costs ~3 µs, and a reader is made per execution.
_HANDLERS: Final = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "_workflow_started",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "_workflow_completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "_workflow_failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "_workflow_timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "_workflow_canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "_workflow_terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "_continued_as_new",
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "_activity_scheduled",
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: "_activity_started",
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "_activity_completed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "_activity_failed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "_activity_timed_out",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED: "_activity_cancel_requested",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "_activity_canceled",
    EventType.EVENT_TYPE_MARKER_RECORDED: "_marker",
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "_child_initiated",
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED: "_child_start_failed",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: "_child_started",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: "_child_completed",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: "_child_failed",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: "_child_canceled",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: "_child_timed_out",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: "_child_terminated",
    EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: (
        "_cancel_external_initiated"
    ),
}
#: Every event type this SDK knows. Those without a handler are irrelevant to component
#: executions (workflow tasks, timers, signals, updates, ...) and skipped silently; truly
#: unknown types warn.
_KNOWN_EVENT_TYPES: Final = frozenset(EventType.values())


class HistoryFormatError(ValueError):
    """A history could not be read at all; the message says what is wrong and where."""


@dataclass(frozen=True)
class ReadOptions:
    #: Cap on each stored payload, in bytes of payload data (larger ones are truncated).
    payload_limit_bytes: int = DEFAULT_PAYLOAD_LIMIT
    #: Converter for payloads; Temporal's default when None. Codecs run before reading.
    payload_converter: PayloadConverter | None = None
    #: Recorded on the summary (histories do not carry their namespace).
    namespace: str | None = None


# -- entry points ------------------------------------------------------------------------


def read_history(
    history: Iterable[HistoryEvent] | WorkflowHistory,
    *,
    definition: WorkflowDefinition | None = None,
    pending_activities: Sequence[PendingActivityInfo] = (),
    options: ReadOptions | None = None,
    run_id: str | None = None,
) -> HistoryReport:
    """Read a whole history. ``history`` may be a ``WorkflowHistory`` or any iterable of
    events (for example a generator over ``fetch_history_events`` pages).

    ``definition`` is the definition that ran; for builder workflows it is taken from the
    workflow's input when not given. ``pending_activities`` comes from
    ``describe().raw_description.pending_activities`` for a running execution.
    ``run_id`` names the run when the caller knows it (a history does not carry its own
    run id; without it the started event's ``original_execution_run_id`` is used, which
    differs only for runs created by a reset).
    """
    workflow_id = history.workflow_id if isinstance(history, WorkflowHistory) else None
    reader = HistoryReader(
        definition=definition, options=options, workflow_id=workflow_id, run_id=run_id
    )
    if isinstance(history, WorkflowHistory):
        history = history.events
    reader.feed(history)
    return reader.finish(pending_activities)


def builder_definition(args: Any) -> WorkflowDefinition:
    """The definition a builder workflow ran, from its decoded start arguments (what the
    reader stores as the execution's input). Raises ``ValueError`` saying why not."""
    try:
        text = json.dumps(args[0]["definition"], separators=(",", ":"))
        return _definition_from_json(text)
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"builder workflow input holds no valid definition: {exc}") from None


@functools.lru_cache(maxsize=256)
def _definition_from_json(text: str) -> WorkflowDefinition:
    """Validated once per distinct definition: every execution of a workflow version
    carries the same one, and validating it (durations, retry policies, the graph) cost
    a fifth of a sync's CPU. Definitions are frozen, so sharing one is safe."""
    return WorkflowDefinition.model_validate_json(text)


def events_from_json(data: str | bytes | dict[str, Any]) -> list[HistoryEvent]:
    """Events of a history in Temporal's JSON form (``WorkflowHistory.to_json``, the CLI,
    the Web UI). Raises :class:`HistoryFormatError` naming the first problem."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise HistoryFormatError(f"history is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HistoryFormatError(
            f"history JSON must be an object with an 'events' list, not {type(data).__name__}"
        )
    events = data.get("events")
    if not isinstance(events, list):
        raise HistoryFormatError("history JSON has no 'events' list")
    try:
        return list(WorkflowHistory.from_json("", {"events": events}).events)
    except Exception:  # find the event to blame below
        pass
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise HistoryFormatError(f"events[{index}] is {type(event).__name__}, not an object")
        try:
            WorkflowHistory.from_json("", {"events": [event]})
        except Exception as exc:  # the protobuf error says which field
            raise HistoryFormatError(
                f"events[{index}] (eventId {event.get('eventId', '?')}) is malformed: {exc}"
            ) from None
    raise HistoryFormatError("history JSON could not be parsed")


def read_history_json(data: str | bytes | dict[str, Any], **kwargs: Any) -> HistoryReport:
    """:func:`events_from_json` then :func:`read_history` (same keyword arguments)."""
    return read_history(events_from_json(data), **kwargs)


# -- the reader --------------------------------------------------------------------------


@dataclass
class _Workflow:
    type: str | None = None
    status: ExecutionStatus = ExecutionStatus.RUNNING
    start_ns: int | None = None
    close_ns: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class HistoryReader:
    """Incremental form of :func:`read_history`: ``feed`` pages, then ``finish`` once."""

    def __init__(
        self,
        *,
        definition: WorkflowDefinition | None = None,
        options: ReadOptions | None = None,
        workflow_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """``workflow_id`` is used when the started event does not carry it (old servers);
        ``run_id``, when given, names the run (see :func:`read_history`)."""
        opts = options or ReadOptions()
        self.options = opts
        self.definition = definition
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.warnings: list[str] = []
        self._payloads = PayloadDecoder(opts.payload_converter, opts.payload_limit_bytes)
        self._components: dict[int, ComponentExecution] = {}
        self._max_attempts: dict[int, int] = {}
        self._wf = _Workflow()
        self._summary = ExecutionSummary(
            workflow_id=None,
            run_id=None,
            workflow_type=None,
            status=ExecutionStatus.RUNNING,
            namespace=opts.namespace,
        )
        self._last_event_id = 0
        self._count = 0
        self._suppressed = 0
        self._handlers = {t: getattr(self, name) for t, name in _HANDLERS.items()}

    def feed(self, events: Iterable[HistoryEvent]) -> None:
        """Consume events in order (one page or the whole history)."""
        for event in events:
            if not isinstance(event, HistoryEvent):
                raise HistoryFormatError(
                    f"expected temporalio.api.history.v1.HistoryEvent, got {type(event).__name__}"
                )
            self._count += 1
            if event.event_id <= self._last_event_id:
                self._warn(f"event {event.event_id} arrived after event {self._last_event_id}")
            self._last_event_id = max(self._last_event_id, event.event_id)
            handler = self._handlers.get(event.event_type)
            if handler is not None:
                handler(event)
            elif event.event_type == EventType.EVENT_TYPE_UNSPECIFIED or (
                event.event_type not in _KNOWN_EVENT_TYPES
            ):
                self._warn(
                    f"event {event.event_id}: unknown event type {event.event_type} "
                    "(kept in the raw history, not interpreted)"
                )

    def _warn(self, message: str) -> None:
        # Bounded: a pathological history must not turn warnings into a memory leak.
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self._suppressed += 1

    def finish(self, pending_activities: Sequence[PendingActivityInfo] = ()) -> HistoryReport:
        """The report. Applies pending-activity info, then closes what the run left open."""
        if self._count == 0:
            raise HistoryFormatError("history has no events")
        summary = self._summary
        if self._suppressed:
            self.warnings.append(f"... and {self._suppressed} more warning(s)")
            self._suppressed = 0
        if summary.workflow_id is None:
            summary.workflow_id = self.workflow_id
        for info in pending_activities:
            self._apply_pending(info)
        closed = self._wf.status is not ExecutionStatus.RUNNING
        for comp in self._components.values():
            if closed and comp.status in _OPEN:
                comp.status = ComponentStatus.CANCELED
                comp.error_type = ErrorType.ABANDONED
                comp.error_message = f"the execution {self._wf.status.value} while this was open"
                self._close(comp, self._wf.close_ns)
            comp.retry_count = comp.temporal_attempt - 1
            comp.is_expected_retry = self._expected(comp)
        summary.status = self._wf.status
        summary.event_count = self._count
        summary.last_event_id = self._last_event_id
        if self._wf.start_ns is not None:
            summary.started_at = _dt(self._wf.start_ns)
        if self._wf.close_ns is not None:
            summary.closed_at = _dt(self._wf.close_ns)
            if self._wf.start_ns is not None:
                summary.duration_ms = _ms(self._wf.close_ns - self._wf.start_ns)
        return HistoryReport(
            summary,
            list(self._components.values()),
            self.warnings,
            non_finite_possible=self._payloads.non_finite_possible
            or any(
                not math.isfinite(c.retry_policy.get("backoff_coefficient", 0.0))
                for c in self._components.values()
                if c.retry_policy
            ),
        )

    # -- workflow events -----------------------------------------------------------

    def _workflow_started(self, ev: HistoryEvent) -> None:
        a = ev.workflow_execution_started_event_attributes
        s = self._summary
        self._wf.start_ns = _ns(ev.event_time)
        s.workflow_type = a.workflow_type.name
        s.workflow_id = a.workflow_id or self.workflow_id
        s.run_id = self.run_id or a.original_execution_run_id or None
        s.task_queue = a.task_queue.name
        s.input_data = self._payloads.decode_all(a.input.payloads)
        s.continued_from_run_id = a.continued_execution_run_id or None
        s.first_execution_run_id = a.first_execution_run_id or None
        s.attempt = a.attempt or 1
        if a.HasField("parent_workflow_execution"):
            s.parent_workflow_id = a.parent_workflow_execution.workflow_id
            s.parent_run_id = a.parent_workflow_execution.run_id
        s.memo = {k: self._payloads.decode(p) for k, p in a.memo.fields.items()}
        s.search_attributes = {
            k: self._payloads.decode(p) for k, p in a.search_attributes.indexed_fields.items()
        }
        s.wfmon_workflow_id = _str_or_none(s.memo.get("wfmon_workflow_id"))
        s.project_id = _str_or_none(s.memo.get("project_id"))
        s.user_id = _str_or_none(s.memo.get("user_id"))
        version = s.memo.get("definition_version")
        s.definition_version = version if isinstance(version, int) else None
        if self.definition is None and s.workflow_type == BUILDER_WORKFLOW_TYPE:
            self.definition = self._definition_from_input(s.input_data)
        if self.definition is not None and s.definition_version is None:
            s.definition_version = self.definition.version

    def _definition_from_input(self, args: list[Any]) -> WorkflowDefinition | None:
        try:
            return builder_definition(args)
        except ValueError as exc:
            self._warn(str(exc))
            return None

    def _workflow_completed(self, ev: HistoryEvent) -> None:
        a = ev.workflow_execution_completed_event_attributes
        self._close_workflow(ev, ExecutionStatus.COMPLETED)
        self._summary.output_data = self._result(a.result)
        self._summary.next_run_id = a.new_execution_run_id or None

    def _workflow_failed(self, ev: HistoryEvent) -> None:
        a = ev.workflow_execution_failed_event_attributes
        self._close_workflow(ev, ExecutionStatus.FAILED)
        s = self._summary
        s.error_message, s.failure_type, _ = self._failure(a.failure)
        s.error_type = ErrorType.WORKFLOW_FAILURE
        s.retry_state = _retry_state(a.retry_state)
        s.next_run_id = a.new_execution_run_id or None

    def _workflow_timed_out(self, ev: HistoryEvent) -> None:
        a = ev.workflow_execution_timed_out_event_attributes
        self._close_workflow(ev, ExecutionStatus.TIMED_OUT)
        s = self._summary
        s.error_type = timeout_error("workflow")
        s.error_message = "the workflow timed out"
        s.retry_state = _retry_state(a.retry_state)
        s.next_run_id = a.new_execution_run_id or None

    def _workflow_canceled(self, ev: HistoryEvent) -> None:
        a = ev.workflow_execution_canceled_event_attributes
        self._close_workflow(ev, ExecutionStatus.CANCELED)
        self._summary.error_type = ErrorType.CANCELED
        self._summary.error_message = self._with_details("the workflow was canceled", a.details)

    def _workflow_terminated(self, ev: HistoryEvent) -> None:
        a = ev.workflow_execution_terminated_event_attributes
        self._close_workflow(ev, ExecutionStatus.TERMINATED)
        self._summary.error_type = ErrorType.TERMINATED
        who = f" by {a.identity}" if a.identity else ""
        self._summary.error_message = f"terminated{who}: {a.reason or 'no reason given'}"

    def _continued_as_new(self, ev: HistoryEvent) -> None:
        a = ev.workflow_execution_continued_as_new_event_attributes
        self._close_workflow(ev, ExecutionStatus.CONTINUED_AS_NEW)
        self._summary.next_run_id = a.new_execution_run_id or None

    def _close_workflow(self, ev: HistoryEvent, status: ExecutionStatus) -> None:
        self._wf.status = status
        self._wf.close_ns = _ns(ev.event_time)

    # -- activities ----------------------------------------------------------------

    def _activity_scheduled(self, ev: HistoryEvent) -> None:
        a = ev.activity_task_scheduled_event_attributes
        comp = ComponentExecution(
            node_id=a.activity_id,
            component_name=self._component_name(a.activity_id, a.activity_type.name),
            kind=ComponentKind.ACTIVITY,
            activity_type=a.activity_type.name,
            scheduled_event_id=ev.event_id,
            status=ComponentStatus.PENDING,
            temporal_activity_id=a.activity_id,
            input_data=self._payloads.decode_all(a.input.payloads),
        )
        self._start(comp, ev)
        if a.HasField("retry_policy"):
            comp.retry_policy = _policy_dict(a.retry_policy)
            self._max_attempts[ev.event_id] = a.retry_policy.maximum_attempts
        self._components[ev.event_id] = comp

    def _activity_started(self, ev: HistoryEvent) -> None:
        a = ev.activity_task_started_event_attributes
        if comp := self._find(a.scheduled_event_id, ev):
            comp.status = ComponentStatus.RUNNING
            comp.temporal_attempt = max(a.attempt, 1)
            comp.attempt_started_at = _dt(_ns(ev.event_time))
            if a.HasField("last_failure"):
                comp.last_failure_message = self._failure(a.last_failure)[0]

    def _activity_completed(self, ev: HistoryEvent) -> None:
        a = ev.activity_task_completed_event_attributes
        if comp := self._find(a.scheduled_event_id, ev):
            comp.status = ComponentStatus.COMPLETED
            comp.output_data = self._result(a.result)
            self._close(comp, _ns(ev.event_time))

    def _activity_failed(self, ev: HistoryEvent) -> None:
        a = ev.activity_task_failed_event_attributes
        if comp := self._find(a.scheduled_event_id, ev):
            comp.status = ComponentStatus.FAILED
            comp.error_message, comp.failure_type, comp.failure_stack = self._failure(a.failure)
            comp.retry_state = _retry_state(a.retry_state)
            comp.error_type = self._failed_error_type(comp, a.retry_state)
            self._close(comp, _ns(ev.event_time))

    def _activity_timed_out(self, ev: HistoryEvent) -> None:
        a = ev.activity_task_timed_out_event_attributes
        if comp := self._find(a.scheduled_event_id, ev):
            comp.status = ComponentStatus.TIMED_OUT
            kind = _timeout_kind(a.failure)
            comp.error_type = timeout_error(kind)
            comp.error_message, comp.failure_type, comp.failure_stack = self._failure(a.failure)
            comp.failure_type = comp.failure_type or "TimeoutError"
            comp.retry_state = _retry_state(a.retry_state)
            self._close(comp, _ns(ev.event_time))

    def _activity_cancel_requested(self, ev: HistoryEvent) -> None:
        a = ev.activity_task_cancel_requested_event_attributes
        if comp := self._find(a.scheduled_event_id, ev):
            comp.cancel_requested = True

    def _activity_canceled(self, ev: HistoryEvent) -> None:
        a = ev.activity_task_canceled_event_attributes
        if comp := self._find(a.scheduled_event_id, ev):
            comp.status = ComponentStatus.CANCELED
            comp.error_type = ErrorType.CANCELED
            # The details say why (the server's ACTIVITY_ID_NOT_STARTED, an SDK's reason);
            # they are not a result, so they go with the message, never into output_data.
            comp.error_message = self._with_details("canceled", a.details)
            self._close(comp, _ns(ev.event_time))

    def _failed_error_type(self, comp: ComponentExecution, state: int) -> str:
        if state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE:
            return ErrorType.NON_RETRYABLE
        if state == RetryState.RETRY_STATE_TIMEOUT:
            return timeout_error("schedule_to_close")
        if state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED:
            # With a one-attempt policy nothing was retried, so nothing was exhausted.
            if self._max_attempts.get(comp.scheduled_event_id) == 1:
                return ErrorType.ACTIVITY_FAILURE
            return ErrorType.RETRY_EXHAUSTED
        return ErrorType.ACTIVITY_FAILURE

    # -- local activities ------------------------------------------------------------

    def _marker(self, ev: HistoryEvent) -> None:
        a = ev.marker_recorded_event_attributes
        if a.marker_name not in LOCAL_ACTIVITY_MARKERS:
            return  # version / patch / side-effect markers are not components
        data = self._marker_data(a.details.get("data"))
        activity_id = str(_first(data, "activity_id", "ActivityID") or ev.event_id)
        activity_type = str(_first(data, "activity_type", "ActivityType") or "")
        comp = ComponentExecution(
            node_id=activity_id,
            component_name=self._component_name(activity_id, activity_type),
            kind=ComponentKind.LOCAL_ACTIVITY,
            activity_type=activity_type,
            scheduled_event_id=ev.event_id,
            status=ComponentStatus.COMPLETED,
            temporal_activity_id=activity_id,
            temporal_attempt=max(int(_first(data, "attempt", "Attempt") or 1), 1),
        )
        end_ns = _ns(ev.event_time)
        start_ns = _pb_json_time_ns(_first(data, "original_schedule_time")) or end_ns
        # The marker is written when the workflow task completes, after the activity ran;
        # the SDK's own clock may disagree slightly, so never start after the end.
        comp.started_at_ns = min(start_ns, end_ns)
        comp.started_at = _dt(comp.started_at_ns)
        if a.HasField("failure"):
            self._local_failure(comp, a.failure)
        elif "result" in a.details:
            comp.output_data = self._result(a.details["result"])
        self._close(comp, end_ns)
        self._components[ev.event_id] = comp

    def _marker_data(self, payloads: Payloads | None) -> dict[str, Any]:
        if payloads is None or not payloads.payloads:
            return {}
        value = self._payloads.decode(payloads.payloads[0])
        return value if isinstance(value, dict) else {}

    def _local_failure(self, comp: ComponentExecution, failure: Failure) -> None:
        comp.error_message, comp.failure_type, comp.failure_stack = self._failure(failure)
        state = (
            failure.activity_failure_info.retry_state
            if failure.HasField("activity_failure_info")
            else RetryState.RETRY_STATE_UNSPECIFIED
        )
        comp.retry_state = _retry_state(state)
        root = _root(failure)
        if root.HasField("timeout_failure_info"):
            comp.status = ComponentStatus.TIMED_OUT
            comp.error_type = timeout_error(_timeout_kind(root))
        elif root.HasField("canceled_failure_info"):
            comp.status = ComponentStatus.CANCELED
            comp.error_type = ErrorType.CANCELED
        else:
            comp.status = ComponentStatus.FAILED
            comp.error_type = self._failed_error_type(comp, state)

    # -- child workflows -------------------------------------------------------------

    def _child_initiated(self, ev: HistoryEvent) -> None:
        a = ev.start_child_workflow_execution_initiated_event_attributes
        comp = ComponentExecution(
            node_id=a.workflow_id,
            component_name=a.workflow_type.name,
            kind=ComponentKind.CHILD_WORKFLOW,
            activity_type=a.workflow_type.name,
            scheduled_event_id=ev.event_id,
            status=ComponentStatus.PENDING,
            child_workflow_id=a.workflow_id,
            input_data=self._payloads.decode_all(a.input.payloads),
        )
        if a.HasField("retry_policy"):
            comp.retry_policy = _policy_dict(a.retry_policy)
        self._start(comp, ev)
        self._components[ev.event_id] = comp

    def _child_start_failed(self, ev: HistoryEvent) -> None:
        a = ev.start_child_workflow_execution_failed_event_attributes
        if comp := self._find(a.initiated_event_id, ev):
            comp.status = ComponentStatus.FAILED
            comp.error_type = ErrorType.START_FAILED
            comp.error_message = f"child workflow could not start: {_enum_name(a.cause)}"
            self._close(comp, _ns(ev.event_time))

    def _child_started(self, ev: HistoryEvent) -> None:
        a = ev.child_workflow_execution_started_event_attributes
        if comp := self._find(a.initiated_event_id, ev):
            comp.status = ComponentStatus.RUNNING
            comp.child_run_id = a.workflow_execution.run_id
            comp.attempt_started_at = _dt(_ns(ev.event_time))

    def _child_completed(self, ev: HistoryEvent) -> None:
        a = ev.child_workflow_execution_completed_event_attributes
        if comp := self._find(a.initiated_event_id, ev):
            comp.status = ComponentStatus.COMPLETED
            comp.output_data = self._result(a.result)
            self._close(comp, _ns(ev.event_time))

    def _child_failed(self, ev: HistoryEvent) -> None:
        a = ev.child_workflow_execution_failed_event_attributes
        if comp := self._find(a.initiated_event_id, ev):
            comp.status = ComponentStatus.FAILED
            comp.error_type = ErrorType.CHILD_WORKFLOW_FAILURE
            comp.error_message, comp.failure_type, comp.failure_stack = self._failure(a.failure)
            comp.retry_state = _retry_state(a.retry_state)
            self._close(comp, _ns(ev.event_time))

    def _child_canceled(self, ev: HistoryEvent) -> None:
        a = ev.child_workflow_execution_canceled_event_attributes
        if comp := self._find(a.initiated_event_id, ev):
            comp.status = ComponentStatus.CANCELED
            comp.error_type = ErrorType.CANCELED
            comp.error_message = self._with_details("the child workflow was canceled", a.details)
            self._close(comp, _ns(ev.event_time))

    def _child_timed_out(self, ev: HistoryEvent) -> None:
        a = ev.child_workflow_execution_timed_out_event_attributes
        if comp := self._find(a.initiated_event_id, ev):
            comp.status = ComponentStatus.TIMED_OUT
            comp.error_type = timeout_error("workflow")
            comp.error_message = "the child workflow timed out"
            comp.retry_state = _retry_state(a.retry_state)
            self._close(comp, _ns(ev.event_time))

    def _child_terminated(self, ev: HistoryEvent) -> None:
        a = ev.child_workflow_execution_terminated_event_attributes
        if comp := self._find(a.initiated_event_id, ev):
            comp.status = ComponentStatus.FAILED
            comp.error_type = ErrorType.TERMINATED
            comp.error_message = "the child workflow was terminated"
            self._close(comp, _ns(ev.event_time))

    def _cancel_external_initiated(self, ev: HistoryEvent) -> None:
        """The workflow asked to cancel another one (a child handle's ``cancel()`` does
        this): when it names one of our children, that child's cancellation was requested,
        as ActivityTaskCancelRequested says for an activity."""
        a = ev.request_cancel_external_workflow_execution_initiated_event_attributes
        target = a.workflow_execution
        comp = self._child_for(target.workflow_id, target.run_id)
        if comp is not None:
            comp.cancel_requested = True
        elif a.child_workflow_only:
            self._warn(
                f"event {ev.event_id} ({_enum_name(ev.event_type)}) asks to cancel child "
                f"workflow {target.workflow_id!r}, which no event of the history read started"
            )
        # Otherwise it targets a workflow that is not a child: not a component of this run.

    def _child_for(self, workflow_id: str, run_id: str) -> ComponentExecution | None:
        """The child workflow a request names: same workflow id and, when the request
        names a run, that run (a child not started yet has no run id to compare). The
        latest one wins: a workflow id is reused only after its previous run closed."""
        for comp in reversed(self._components.values()):
            if comp.kind is not ComponentKind.CHILD_WORKFLOW:
                continue
            if comp.child_workflow_id != workflow_id:
                continue
            if run_id and comp.child_run_id and comp.child_run_id != run_id:
                continue
            return comp
        return None

    # -- pending activities ----------------------------------------------------------

    def _apply_pending(self, info: PendingActivityInfo) -> None:
        comp = next(
            (
                c
                for c in reversed(self._components.values())
                if c.kind is ComponentKind.ACTIVITY
                and c.temporal_activity_id == info.activity_id
                and c.status in _OPEN
            ),
            None,
        )
        if comp is None:
            self._warn(f"pending activity {info.activity_id!r} has no open ActivityTaskScheduled")
            return
        comp.temporal_attempt = max(info.attempt, comp.temporal_attempt)
        if info.HasField("last_failure"):
            message, ftype, stack = self._failure(info.last_failure)
            comp.last_failure_message = message
            comp.failure_type, comp.failure_stack = ftype, stack
        if info.HasField("next_attempt_schedule_time"):
            comp.next_retry_at = _dt(_ns(info.next_attempt_schedule_time))
        if info.HasField("last_started_time"):
            comp.attempt_started_at = _dt(_ns(info.last_started_time))
        if info.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
            comp.status = ComponentStatus.RUNNING
        elif info.state == PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED:
            comp.status = ComponentStatus.RUNNING
            comp.cancel_requested = True
        elif info.attempt > 1:
            comp.status = ComponentStatus.RETRYING
        else:
            comp.status = ComponentStatus.PENDING

    # -- helpers -------------------------------------------------------------------

    def _component_name(self, activity_id: str, activity_type: str) -> str:
        if self.definition is None:
            return activity_type
        node = self.definition.node(activity_id)
        if node is None:
            self._warn(
                f"activity {activity_id!r} is not a node of definition "
                f"{self.definition.id!r} v{self.definition.version}"
            )
            return activity_type
        return node.component

    def _find(self, scheduled_event_id: int, ev: HistoryEvent) -> ComponentExecution | None:
        comp = self._components.get(scheduled_event_id)
        if comp is None:
            self._warn(
                f"event {ev.event_id} ({_enum_name(ev.event_type)}) refers to event "
                f"{scheduled_event_id}, which is not in the history read"
            )
        return comp

    def _start(self, comp: ComponentExecution, ev: HistoryEvent) -> None:
        comp.started_at_ns = _ns(ev.event_time)
        comp.started_at = _dt(comp.started_at_ns)

    def _close(self, comp: ComponentExecution, end_ns: int | None) -> None:
        if end_ns is None:
            return
        comp.completed_at_ns = end_ns
        comp.completed_at = _dt(end_ns)
        if comp.started_at_ns is not None:
            comp.duration_ms = _ms(end_ns - comp.started_at_ns)

    def _expected(self, comp: ComponentExecution) -> bool:
        if comp.temporal_attempt <= 1:
            return False
        limit = self._max_attempts.get(comp.scheduled_event_id, 0)
        within_policy = limit == 0 or comp.temporal_attempt <= limit
        if comp.status is ComponentStatus.COMPLETED:
            return within_policy
        if comp.status in _OPEN:
            return within_policy
        return False

    def _with_details(self, message: str, details: Payloads) -> str:
        """``message``, then the decoded cancel details when there are any (a string as it
        is, anything else as compact JSON), at most ``MAX_DETAILS_CHARS`` of them."""
        values = self._payloads.decode_all(details.payloads)
        shown = ", ".join(
            v if isinstance(v, str) else _compact_json(v) for v in values if v is not None
        )
        if not shown:
            return message
        if len(shown) > MAX_DETAILS_CHARS:
            shown = shown[: MAX_DETAILS_CHARS - 1] + "…"
        return f"{message}: {shown}"

    def _result(self, payloads: Payloads) -> Any:
        values = self._payloads.decode_all(payloads.payloads)
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def _failure(self, failure: Failure) -> tuple[str, str | None, str | None]:
        """(message, application failure type, stack trace) of a failure and its causes."""
        failure = self._decoded_failure(failure)
        root = _root(failure)
        if root is not failure:
            root = self._decoded_failure(root)
        message = failure.message or root.message
        if root is not failure and root.message and root.message != failure.message:
            message = f"{failure.message}: {root.message}" if failure.message else root.message
        ftype = None
        for f in (failure, root):
            if f.HasField("application_failure_info") and f.application_failure_info.type:
                ftype = f.application_failure_info.type
                break
        stack = root.stack_trace or failure.stack_trace or None
        return message, ftype, stack

    def _decoded_failure(self, failure: Failure) -> Failure:
        """Failures whose message and stack were encoded by a failure converter."""
        if not failure.HasField("encoded_attributes"):
            return failure
        attrs = self._payloads.decode(failure.encoded_attributes)
        if not isinstance(attrs, dict):
            return failure
        copy = Failure()
        copy.CopyFrom(failure)
        copy.message = str(attrs.get("message", failure.message))
        copy.stack_trace = str(attrs.get("stack_trace", failure.stack_trace))
        return copy


# -- small pure helpers ------------------------------------------------------------------


def _ns(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000_000 + ts.nanos


def _dt(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _ms(ns: int) -> int:
    return max(0, round(ns / 1_000_000))


def _pb_duration(d: PbDuration) -> timedelta:
    return timedelta(seconds=d.seconds, microseconds=d.nanos // 1000)


def _pb_json_time_ns(value: Any) -> int | None:
    """Timestamps inside local-activity marker JSON: ``{"seconds": s, "nanos": n}``."""
    if isinstance(value, dict) and "seconds" in value:
        return int(value["seconds"]) * 1_000_000_000 + int(value.get("nanos", 0))
    return None


def _policy_dict(p: RetryPolicy) -> dict[str, Any]:
    return {
        "initial_interval": format_duration(_pb_duration(p.initial_interval)),
        "backoff_coefficient": p.backoff_coefficient,
        "maximum_interval": format_duration(_pb_duration(p.maximum_interval)),
        "maximum_attempts": p.maximum_attempts,
        "non_retryable_error_types": list(p.non_retryable_error_types),
    }


def _root(failure: Failure) -> Failure:
    while failure.HasField("cause"):
        failure = failure.cause
    return failure


def _timeout_kind(failure: Failure) -> str:
    for f in _chain(failure):
        if f.HasField("timeout_failure_info"):
            name = TimeoutType.Name(f.timeout_failure_info.timeout_type)
            return name.removeprefix("TIMEOUT_TYPE_").lower()
    return "unspecified"


def _chain(failure: Failure) -> Iterator[Failure]:
    yield failure
    while failure.HasField("cause"):
        failure = failure.cause
        yield failure


def _retry_state(state: int) -> str | None:
    if state == RetryState.RETRY_STATE_UNSPECIFIED:
        return None
    return _enum_name(state, RetryState).removeprefix("RETRY_STATE_").lower()


def _enum_name(value: int, enum: Any = EventType) -> str:
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


def _first(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in data:
            return data[key]
    return None


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
