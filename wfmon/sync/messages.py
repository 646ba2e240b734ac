"""Messages of the sync coordinator, the child sync workflow and their activities.

Plain dataclasses: Temporal's JSON converter carries them, and none of them ever holds a
history (histories are streamed inside one activity; see DESIGN.md).

No ``from __future__ import annotations`` here, on purpose: the converter reads each
dataclass's type hints on every payload it decodes (``typing.get_type_hints``), and string
annotations are compiled again on each call. With real annotations decoding a
``SyncResult`` measured ~5x cheaper, and the sync decodes each execution's ref and result
several times (update, batch child, activity). Every class only refers to classes above it.
"""

from dataclasses import dataclass, field
from enum import StrEnum

#: Task queue of the coordinator, the child sync workflows and the sync activities.
SYNC_TASK_QUEUE = "wfmon-sync"
COORDINATOR_WORKFLOW_TYPE = "WfmonSyncCoordinator"
SYNC_BATCH_WORKFLOW_TYPE = "WfmonSyncBatch"


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


class SyncOutcome(StrEnum):
    SYNCED = "synced"
    FAILED = "failed"
    NOT_FOUND = "not_found"
    #: Another syncer holds a live lease on this execution; retried later.
    BUSY = "busy"


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
    #: A failure worth retrying (transient), as opposed to a permanent one.
    retryable: bool = False
    duration_ms: int = 0


@dataclass
class SyncBatch:
    """Executions synced by one child workflow (one activity). Batching amortises the
    orchestration cost; deduplication stays per execution in the coordinator."""

    executions: list[ExecutionRef]


@dataclass
class CoordinatorConfig:
    """Tunables, carried across continue-as-new."""

    #: Child sync workflows running at once.
    max_concurrent_batches: int = 4
    #: Executions per child sync workflow.
    batch_size: int = 50
    #: How often a running execution is re-synced until it closes.
    live_resync_seconds: float = 5.0
    #: Continue-as-new after this many batches (keeps the coordinator's history small).
    batches_before_continue_as_new: int = 200


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
class SyncFailures:
    """Syncs that failed for good (after their retries): recorded on the execution rows."""

    failures: list[SyncResult]


@dataclass
class CoordinatorState:
    """What the ``state`` query answers."""

    queued: list[str]
    in_flight: list[str]
    live: list[str]
    running_batches: int
    completed_syncs: int
    failed_syncs: int
