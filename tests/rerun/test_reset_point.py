"""Where a failed run is reset to, read from its history events (pure, no services)."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    ActivityTaskFailedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskTimedOutEventAttributes,
    HistoryEvent,
)

from wfmon.rerun import ResetPoint, reset_point


def scheduled(event_id: int, node: str, completed_by: int) -> HistoryEvent:
    return HistoryEvent(
        event_id=event_id,
        event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        activity_task_scheduled_event_attributes=ActivityTaskScheduledEventAttributes(
            activity_id=node, workflow_task_completed_event_id=completed_by
        ),
    )


def failed(event_id: int, of: int) -> HistoryEvent:
    return HistoryEvent(
        event_id=event_id,
        event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        activity_task_failed_event_attributes=ActivityTaskFailedEventAttributes(
            scheduled_event_id=of
        ),
    )


def timed_out(event_id: int, of: int) -> HistoryEvent:
    return HistoryEvent(
        event_id=event_id,
        event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        activity_task_timed_out_event_attributes=ActivityTaskTimedOutEventAttributes(
            scheduled_event_id=of
        ),
    )


def test_reset_to_before_the_earliest_failed_node_of_parallel_branches() -> None:
    # a -> (b, c in one step) -> d: c fails, then d (scheduled later) times out.
    events = [
        scheduled(5, "a", completed_by=4),
        scheduled(11, "b", completed_by=10),
        scheduled(12, "c", completed_by=10),
        failed(14, of=12),
        scheduled(19, "d", completed_by=18),
        timed_out(21, of=19),
    ]
    assert reset_point(events) == ResetPoint(
        node_id="c",
        scheduled_event_id=12,
        workflow_task_completed_event_id=10,
        failed_nodes=("c", "d"),
    )


def test_no_failed_activity_no_reset_point() -> None:
    assert reset_point([scheduled(5, "a", completed_by=4)]) is None
    assert reset_point([]) is None
