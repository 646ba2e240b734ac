"""The sync worker, and the one way to reach the coordinator (starting it when absent)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from wfmon.db import Database
from wfmon.sync.activities import SyncActivities, SyncOptions
from wfmon.sync.converter import sync_client
from wfmon.sync.messages import (
    SYNC_TASK_QUEUE,
    CoordinatorConfig,
    CoordinatorInput,
    ExecutionRef,
    SyncResult,
    coordinator_workflow_id,
)
from wfmon.sync.workflows import SyncBatchWorkflow, SyncCoordinatorWorkflow


def build_sync_worker(
    client: Client,
    db: Database,
    *,
    options: SyncOptions | None = None,
    task_queue: str = SYNC_TASK_QUEUE,
    max_concurrent_activities: int = 16,
) -> Worker:
    """A Worker running the coordinator, the child sync workflow and the sync activities
    (their messages converted by :mod:`wfmon.sync.converter`)."""
    activities = SyncActivities(client, db, options)
    return Worker(
        sync_client(client),
        task_queue=task_queue,
        workflows=[SyncCoordinatorWorkflow, SyncBatchWorkflow],
        activities=[activities.sync_executions, activities.record_sync_failures],
        max_concurrent_activities=max_concurrent_activities,
    )


async def coordinator(
    client: Client,
    *,
    config: CoordinatorConfig | None = None,
    task_queue: str = SYNC_TASK_QUEUE,
) -> WorkflowHandle[SyncCoordinatorWorkflow, None]:
    """Handle of this namespace's coordinator, started first if it is not running.

    Safe to call from many processes at once: the fixed id with USE_EXISTING means one
    coordinator per namespace. The handle converts the sync's messages with
    :mod:`wfmon.sync.converter`.
    """
    return await sync_client(client).start_workflow(
        SyncCoordinatorWorkflow.run,
        CoordinatorInput(config=config or CoordinatorConfig()),
        id=coordinator_workflow_id(client.namespace),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def request_sync(client: Client, execution: ExecutionRef) -> None:
    """Queue a sync of ``execution`` (returns at once)."""
    handle = await coordinator(client)
    await handle.signal(SyncCoordinatorWorkflow.request_sync, execution)


async def sync_now(client: Client, execution: ExecutionRef) -> SyncResult:
    """Sync ``execution`` now through the coordinator and return the result."""
    handle = await coordinator(client)
    return await handle.execute_update(SyncCoordinatorWorkflow.sync_now, execution)


#: Executions per update call: keeps each update's arguments and results far below
#: Temporal's 2 MB payload limit.
UPDATE_CHUNK = 500


async def sync_many_now(client: Client, executions: list[ExecutionRef]) -> list[SyncResult]:
    """Sync every execution now through the coordinator; results in the same order."""
    handle = await coordinator(client)
    results: list[SyncResult] = []
    for i in range(0, len(executions), UPDATE_CHUNK):
        results += await handle.execute_update(
            SyncCoordinatorWorkflow.sync_many_now, executions[i : i + UPDATE_CHUNK]
        )
    return results
