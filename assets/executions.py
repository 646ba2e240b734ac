"""The partitioned execution assets: discovery from Temporal visibility, then sync.

``discovered_executions``: materializing a day lists its closed executions from Temporal
visibility and upserts their ``workflow_executions`` rows (status, times, owner).

``workflow_executions`` + ``component_executions``: materializing a day asks the sync
coordinator (a workflow in Temporal, run by the wfmon sync worker) to sync every
execution of the day that is not synced yet, through an Update that returns when the rows
are written. One op materializes both assets, because one sync writes both tables in one
transaction per execution. Its checks verify the day afterwards: every closed execution
that visibility lists is synced, and no component row hangs off an unsynced execution.
"""

import time
from collections import Counter
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from assets.metadata import COMPONENT_COLUMNS, EXECUTION_COLUMNS, OWNERS, SYNC_GROUP
from assets.partitions import discovery_bounds, execution_close_partitions, single_run_backfill
from resources.database import WfmonDatabaseResource
from resources.temporal import TemporalResource
from wfmon.db import windows
from wfmon.sync.discovery import DiscoveredExecution, discover, record_discovered
from wfmon.sync.messages import SYNC_TASK_QUEUE, ExecutionRef, SyncOutcome, SyncResult
from wfmon.sync.worker import sync_many_now

DISCOVERED = dg.AssetKey("discovered_executions")
WORKFLOW_EXECUTIONS = dg.AssetKey("workflow_executions")
COMPONENT_EXECUTIONS = dg.AssetKey("component_executions")

ALL_SYNCED_CHECK = "every_closed_execution_synced"
NO_ORPHANS_CHECK = "no_component_row_without_synced_execution"


def _window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    tw = context.partition_time_window
    return tw.start, tw.end


async def list_window(client: Client, start: datetime, end: datetime) -> list[DiscoveredExecution]:
    """Closed executions with close time in ``[start, end)``, wfmon's own left out."""
    after, until = discovery_bounds(start, end)
    return await discover(
        client, closed_after=after, closed_until=until, exclude_task_queues=[SYNC_TASK_QUEUE]
    )


def _not_yet_recorded(
    database: WfmonDatabaseResource,
    namespace: str,
    start: datetime,
    end: datetime,
    found: list[DiscoveredExecution],
) -> list[DiscoveredExecution]:
    """The executions of ``found`` whose row is missing or differs (status, close time).

    Rows that already say what visibility says are not rewritten, so their ``updated_at``
    stays and the incremental statistics refresh does not recompute them.
    """
    with database.as_system() as conn:
        rows = windows.list_closed_in_window(conn, namespace, start, end)
    known = {
        (r["temporal_workflow_id"], r["temporal_run_id"]): (r["status"], r["closed_at"])
        for r in rows
    }
    return [
        d for d in found if known.get((d.ref.workflow_id, d.ref.run_id)) != (d.status, d.closed_at)
    ]


@dg.asset(
    key=DISCOVERED,
    partitions_def=execution_close_partitions,
    backfill_policy=single_run_backfill,
    group_name=SYNC_GROUP,
    owners=OWNERS,
    kinds={"temporal", "postgres"},
    io_manager_key="wfmon_tables",
    description=(
        "Executions that closed in the partition's UTC day, as Temporal visibility lists "
        "them, recorded in workflow_executions (status, times, owner; history not yet read)."
    ),
    metadata={
        "dagster/column_schema": EXECUTION_COLUMNS,
        "dagster/table_name": "workflow_executions",
    },
)
def discovered_executions(
    context: dg.AssetExecutionContext,
    temporal: TemporalResource,
    database: WfmonDatabaseResource,
) -> dg.MaterializeResult[Any]:
    """Guarantees: after success, every execution visibility lists for the window has a
    row (upserted as the system role, owners resolved from search attributes)."""
    start, end = _window(context)
    found = temporal.run(lambda client: list_window(client, start, end))
    changed = _not_yet_recorded(database, temporal.resolved_namespace(), start, end, found)
    record_discovered(database.database(), changed)
    by_status = Counter(d.status for d in found)
    context.log.info(
        f"discovered {len(found)} execution(s) closed in [{start}, {end}), "
        f"{len(changed)} new or changed"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(found),
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "by_status": dict(sorted(by_status.items())),
            "recorded_now": len(changed),
            "foreign_executions": sum(1 for d in found if d.wfmon_workflow_id is None),
        }
    )


class SyncConfig(dg.Config):
    """How a partition is synced."""

    resync: bool = Field(
        default=False,
        description="Sync every execution of the window again, not only those not synced yet.",
    )
    timeout_seconds: float = Field(
        default=900.0, description="Give up waiting for the coordinator after this long."
    )


async def has_sync_worker(client: Client) -> bool:
    """Whether a wfmon sync worker has polled the sync task queue recently."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=SYNC_TASK_QUEUE),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(response.pollers) > 0


def _to_sync(
    database: WfmonDatabaseResource, namespace: str, start: datetime, end: datetime, resync: bool
) -> list[ExecutionRef]:
    """Executions of the namespace and window whose stored state is not a synced, closed
    execution (rows of other namespaces belong to other deployments)."""
    with database.as_system() as conn:
        rows = windows.list_unsynced_in_window(
            conn, namespace, start, end, exclude_task_queue=SYNC_TASK_QUEUE, resync=resync
        )
    return [
        ExecutionRef(r["temporal_namespace"], r["temporal_workflow_id"], r["temporal_run_id"])
        for r in rows
    ]


def _window_summary(
    database: WfmonDatabaseResource, namespace: str, start: datetime, end: datetime
) -> dict[str, Any]:
    with database.as_system() as conn:
        by_status = windows.count_by_status_in_window(
            conn, namespace, start, end, exclude_task_queue=SYNC_TASK_QUEUE
        )
        components = windows.count_components_in_window(conn, namespace, start, end)
    status = Counter[str]()
    sync_status = Counter[str]()
    for r in by_status:
        status[r["status"]] += r["n"]
        sync_status[r["history_sync_status"]] += r["n"]
    return {
        "executions": sum(status.values()),
        "by_status": dict(sorted(status.items())),
        "by_sync_status": dict(sorted(sync_status.items())),
        "history_bytes": int(sum(r["bytes"] for r in by_status)),
        "history_events": int(sum(r["events"] for r in by_status)),
        "component_rows": int(components["n"]),
        "component_failures": int(components["failed"]),
        "component_retries": int(components["retries"]),
    }


def _check_all_synced(
    temporal: TemporalResource, database: WfmonDatabaseResource, start: datetime, end: datetime
) -> dg.AssetCheckResult:
    listed = temporal.run(lambda client: list_window(client, start, end))
    keys = {(d.ref.namespace, d.ref.workflow_id, d.ref.run_id) for d in listed}
    with database.as_system() as conn:
        rows = windows.list_synced_in_window(
            conn, temporal.resolved_namespace(), start, end, exclude_task_queue=SYNC_TASK_QUEUE
        )
    synced = {
        (r["temporal_namespace"], r["temporal_workflow_id"], r["temporal_run_id"]) for r in rows
    }
    missing = sorted(keys - synced)
    return dg.AssetCheckResult(
        check_name=ALL_SYNCED_CHECK,
        asset_key=WORKFLOW_EXECUTIONS,
        passed=not missing,
        metadata={
            "visibility_count": len(keys),
            "synced_count": len(keys & synced),
            "missing_count": len(missing),
            "missing_sample": ["/".join(k) for k in missing[:20]],
        },
    )


def _check_no_orphans(
    database: WfmonDatabaseResource, start: datetime, end: datetime
) -> dg.AssetCheckResult:
    with database.as_system() as conn:
        orphans = windows.count_orphan_components(conn, start, end)
    return dg.AssetCheckResult(
        check_name=NO_ORPHANS_CHECK,
        asset_key=COMPONENT_EXECUTIONS,
        passed=orphans == 0,
        metadata={"orphan_rows": orphans},
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            WORKFLOW_EXECUTIONS,
            deps=[DISCOVERED],
            group_name=SYNC_GROUP,
            owners=OWNERS,
            kinds={"temporal", "postgres"},
            description=(
                "Executions closed in the partition's UTC day with their synced Temporal "
                "history (stored as protobuf), status, timing and errors."
            ),
            metadata={
                "dagster/column_schema": EXECUTION_COLUMNS,
                "dagster/table_name": "workflow_executions",
            },
        ).with_io_manager_key("wfmon_tables"),
        dg.AssetSpec(
            COMPONENT_EXECUTIONS,
            deps=[DISCOVERED],
            group_name=SYNC_GROUP,
            owners=OWNERS,
            kinds={"temporal", "postgres"},
            description=(
                "Component (node) runs of the partition's executions: inputs, outputs, "
                "timing, errors, retries and whether they were expected."
            ),
            metadata={
                "dagster/column_schema": COMPONENT_COLUMNS,
                "dagster/table_name": "component_executions",
            },
        ).with_io_manager_key("wfmon_tables"),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            ALL_SYNCED_CHECK,
            asset=WORKFLOW_EXECUTIONS,
            description="Every closed execution visibility lists for the day is synced.",
        ),
        dg.AssetCheckSpec(
            NO_ORPHANS_CHECK,
            asset=COMPONENT_EXECUTIONS,
            description="No component row without an execution, or on a never-synced one.",
        ),
    ],
    partitions_def=execution_close_partitions,
    backfill_policy=single_run_backfill,
    name="sync_executions",
)
def sync_executions(
    context: dg.AssetExecutionContext,
    config: SyncConfig,
    temporal: TemporalResource,
    database: WfmonDatabaseResource,
) -> Any:
    """Guarantees: returns only after the coordinator has answered for every execution
    that needed a sync (each one written in its own transaction, or its failure recorded
    on its row); the checks then compare the day with visibility."""
    start, end = _window(context)
    namespace = temporal.resolved_namespace()
    refs = _to_sync(database, namespace, start, end, config.resync)
    started = time.perf_counter()
    results: list[SyncResult] = []
    if refs:
        if not temporal.run(has_sync_worker):
            raise dg.Failure(
                description=(
                    f"no wfmon sync worker polls task queue {SYNC_TASK_QUEUE!r}: start one "
                    "(`wfmon worker`) and materialize the partition again"
                ),
                metadata={"executions_to_sync": len(refs)},
            )
        results = temporal.run(
            lambda client: sync_many_now(client, refs), timeout=config.timeout_seconds
        )
    elapsed = time.perf_counter() - started
    outcomes = Counter(r.outcome.value for r in results)
    failures = [r for r in results if r.outcome is not SyncOutcome.SYNCED]
    context.log.info(
        f"synced {outcomes.get('synced', 0)}/{len(refs)} execution(s) of [{start}, {end}) "
        f"in {elapsed:.2f}s"
    )
    summary = _window_summary(database, namespace, start, end)
    sync_meta: dict[str, Any] = {
        "requested_syncs": len(refs),
        "sync_outcomes": dict(sorted(outcomes.items())),
        "sync_seconds": round(elapsed, 3),
        "synced_events": sum(r.event_count for r in results),
        "synced_bytes": sum(r.history_bytes for r in results),
        "sync_failures": [
            f"{r.execution.key}: {r.outcome.value}: {r.error}" for r in failures[:20]
        ],
    }
    yield dg.MaterializeResult(
        asset_key=WORKFLOW_EXECUTIONS,
        metadata={
            "dagster/row_count": summary["executions"],
            "by_status": summary["by_status"],
            "by_sync_status": summary["by_sync_status"],
            "history_bytes": summary["history_bytes"],
            "history_events": summary["history_events"],
            **sync_meta,
        },
    )
    yield dg.MaterializeResult(
        asset_key=COMPONENT_EXECUTIONS,
        metadata={
            "dagster/row_count": summary["component_rows"],
            "component_failures": summary["component_failures"],
            "component_retries": summary["component_retries"],
        },
    )
    yield _check_all_synced(temporal, database, start, end)
    yield _check_no_orphans(database, start, end)
