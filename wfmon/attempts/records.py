"""What one activity attempt was, as the worker saw it, and its database row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from wfmon.db.rows import AttemptRow


class AttemptOutcome(StrEnum):
    """How an attempt ended (the `outcome` column of component_execution_attempts)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    #: Temporal timed the attempt out (start-to-close or heartbeat) and canceled it.
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of one activity, as the worker saw it. Times are UTC."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    #: The node id for builder workflows.
    activity_id: str
    activity_type: str
    attempt: int
    is_local: bool
    task_queue: str
    scheduled_at: datetime | None
    started_at: datetime
    ended_at: datetime
    outcome: AttemptOutcome
    failure_type: str | None = None
    failure_message: str | None = None
    failure_stack: str | None = None
    non_retryable: bool | None = None
    worker_identity: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() * 1000


def to_row(record: AttemptRecord) -> AttemptRow:
    """The ``component_execution_attempts`` row of one attempt record."""
    return AttemptRow(
        temporal_namespace=record.namespace,
        temporal_workflow_id=record.workflow_id,
        temporal_run_id=record.run_id,
        activity_id=record.activity_id,
        attempt=record.attempt,
        started_at=record.started_at,
        activity_type=record.activity_type,
        ended_at=record.ended_at,
        outcome=record.outcome.value,
        failure_type=record.failure_type,
        failure_message=record.failure_message,
        failure_stack=record.failure_stack,
        worker_identity=record.worker_identity,
    )
