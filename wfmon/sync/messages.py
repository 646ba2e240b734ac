"""Messages of the sync coordinator, the child sync workflow and their activities.

Plain dataclasses: Temporal's JSON converter carries them, and none of them ever holds a
history (histories are streamed inside one activity; see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

#: Task queue of the coordinator, the child sync workflows and the sync activities.
SYNC_TASK_QUEUE = "wfmon-sync"
COORDINATOR_WORKFLOW_TYPE = "WfmonSyncCoordinator"
SYNC_EXECUTION_WORKFLOW_TYPE = "WfmonSyncExecution"


def coordinator_workflow_id(namespace: str) -> str:
    """One coordinator per namespace, at a fixed id."""
    return f"wfmon-sync-coordinator-{namespace}"


@dataclass(frozen=True)
class ExecutionRef:
    """A Temporal execution: namespace + workflow id + run id."""

    namespace: str
    workflow_id: str
    run_id: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.workflow_id}/{self.run_id}"

    def child_workflow_id(self) -> str:
        """Id of the child sync workflow for this execution: one at a time per execution."""
        return f"wfmon-sync/{self.key}"


class SyncOutcome(StrEnum):
    SYNCED = "synced"
    FAILED = "failed"
    NOT_FOUND = "not_found"


@dataclass
class SyncResult:
    """What one sync of one execution did."""

    execution: ExecutionRef
    outcome: SyncOutcome
    execution_status: str | None = None
    #: The execution was still running: the coordinator re-syncs it after an interval.
    still_running: bool = False
    component_count: int = 0
    event_count: int = 0
    history_bytes: int = 0
    error: str | None = None
    duration_ms: int = 0


@dataclass
class CoordinatorConfig:
    """Tunables, carried across continue-as-new."""

    max_concurrent_syncs: int = 8
    #: How often a running execution is re-synced until it closes.
    live_resync_seconds: float = 5.0
    #: Continue-as-new after this many syncs (keeps the coordinator's history small).
    syncs_before_continue_as_new: int = 500


@dataclass
class LiveExecution:
    """A running execution the coordinator re-syncs until it closes."""

    execution: ExecutionRef
    #: Workflow time (unix seconds) of its next sync.
    next_sync_at: float


@dataclass
class CoordinatorInput:
    config: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    #: Requests not yet started when the previous run continued-as-new.
    queued: list[ExecutionRef] = field(default_factory=list)
    live: list[LiveExecution] = field(default_factory=list)
    completed_syncs: int = 0
    failed_syncs: int = 0


@dataclass
class SyncFailure:
    """A sync that failed for good (after its retries): recorded on the execution row."""

    execution: ExecutionRef
    error: str


@dataclass
class CoordinatorState:
    """What the ``state`` query answers."""

    queued: list[str]
    in_flight: list[str]
    live: list[str]
    completed_syncs: int
    failed_syncs: int
