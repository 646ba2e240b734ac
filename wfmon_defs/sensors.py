"""The execution sensor: newly closed executions -> runs of their days; running ones -> the
sync coordinator for live sync. Plus: ``statistics_after_sync``, the automation-condition
sensor that refreshes the statistics after synced histories are materialized by any run
(this sensor's, a partition materialized by hand, a backfill).

The cursor holds a close time, the keys of executions closed within ``OVERLAP`` before it
(visibility may index an execution a little after it closed, so each tick looks back that
far and skips what it already handed out) and the running executions already handed to the
coordinator. Its size is bounded by what closes within the overlap plus what is running,
never by history: a tick costs two visibility listings of recent executions.

Run keys are ``<day>:<hash of the executions found for it>``. A run key is only ever
reused for the very same set of executions, so when the cursor moves back (reset by hand,
restored from an old value) the executions found again are requested again unless exactly
that set was already requested: work can be repeated, never silently dropped.
"""

import asyncio
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import dagster as dg
from temporalio.client import Client

from assets.partitions import partition_key_for
from assets.statistics import statistics_dbt_models
from resources.connections import ProjectConnectionsResource
from resources.database import WfmonDatabaseResource
from resources.dbt import STATISTICS_REFRESH_TAGS
from resources.temporal import TemporalResource
from wfmon.alerts import run_tick
from wfmon.connections.errors import KeyringError
from wfmon.connections.policy import NetworkPolicy
from wfmon.sync.discovery import DiscoveredExecution, discover
from wfmon.sync.messages import SYNC_TASK_QUEUE, ExecutionRef
from wfmon.sync.worker import request_sync
from wfmon_defs.jobs import sync_executions_job

#: How far back each tick looks again before the cursor (visibility indexing lag).
OVERLAP: Final = timedelta(seconds=30)
#: Where a sensor without a cursor starts (older days: the reconciliation or a backfill).
INITIAL_LOOKBACK: Final = timedelta(days=2)
SENSOR_INTERVAL_SECONDS: Final = 10


@dataclass
class ExecutionCursor:
    """What the sensor remembers between ticks (serialised as JSON)."""

    closed_after: datetime
    #: Keys of executions closed in ``(closed_after - OVERLAP, closed_after]`` already handled.
    recent: dict[str, str] = field(default_factory=dict)
    #: Keys of running executions already handed to the coordinator.
    live: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "closed_after": self.closed_after.isoformat(),
                "recent": self.recent,
                "live": self.live,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str | None, now: datetime) -> "ExecutionCursor":
        """The stored cursor; a missing one starts ``INITIAL_LOOKBACK`` before ``now``; a bare
        ISO timestamp (set by hand in the UI) is accepted as ``closed_after``."""
        if not raw:
            return cls(closed_after=now - INITIAL_LOOKBACK)
        raw = raw.strip()
        if not raw.startswith("{"):
            return cls(closed_after=_aware(datetime.fromisoformat(raw)))
        data = json.loads(raw)
        return cls(
            closed_after=_aware(datetime.fromisoformat(data["closed_after"])),
            recent=dict(data.get("recent", {})),
            live=list(data.get("live", [])),
        )


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass
class TickPlan:
    """What one tick decided."""

    #: day -> keys of the newly closed executions found for it.
    new_by_partition: dict[str, list[str]]
    #: Running executions to hand to the coordinator now.
    hand_over: list[ExecutionRef]
    cursor: ExecutionCursor

    def run_requests(self) -> list[dg.RunRequest]:
        return [
            dg.RunRequest(
                run_key=run_key_for(day, keys),
                partition_key=day,
                tags={"wfmon/new_executions": str(len(keys))},
            )
            for day, keys in sorted(self.new_by_partition.items())
        ]


def run_key_for(day: str, keys: Sequence[str]) -> str:
    """``<day>:<digest of the sorted execution keys>``: equal only for the same set."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:20]
    return f"{day}:{digest}"


def plan_tick(
    cursor: ExecutionCursor,
    closed: Sequence[DiscoveredExecution],
    running: Sequence[DiscoveredExecution],
) -> TickPlan:
    """Pure: given the listings since ``cursor.closed_after - OVERLAP``, what to request."""
    new_by_partition: dict[str, list[str]] = defaultdict(list)
    seen = dict(cursor.recent)
    newest = cursor.closed_after
    for d in closed:
        if d.closed_at is None:
            continue
        key = d.ref.key
        if key in seen:
            continue
        seen[key] = d.closed_at.isoformat()
        new_by_partition[partition_key_for(d.closed_at)].append(key)
        newest = max(newest, d.closed_at)
    horizon = newest - OVERLAP
    recent = {k: t for k, t in seen.items() if datetime.fromisoformat(t) > horizon}
    already_live = set(cursor.live)
    running_now = {d.ref.key: d.ref for d in running}
    hand_over = [ref for key, ref in running_now.items() if key not in already_live]
    return TickPlan(
        new_by_partition=dict(new_by_partition),
        hand_over=hand_over,
        cursor=ExecutionCursor(closed_after=newest, recent=recent, live=sorted(running_now)),
    )


async def list_since(
    client: Client, cursor: ExecutionCursor
) -> tuple[list[DiscoveredExecution], list[DiscoveredExecution]]:
    """Executions closed after ``cursor.closed_after - OVERLAP``, and running ones."""
    closed, running = await asyncio.gather(
        discover(
            client,
            closed_after=cursor.closed_after - OVERLAP,
            exclude_task_queues=[SYNC_TASK_QUEUE],
        ),
        discover(client, running=True, exclude_task_queues=[SYNC_TASK_QUEUE]),
    )
    return closed, running


async def evaluate_tick(client: Client, cursor: ExecutionCursor) -> TickPlan:
    """List, plan, and hand the new running executions to the coordinator (signals)."""
    closed, running = await list_since(client, cursor)
    plan = plan_tick(cursor, closed, running)
    if plan.hand_over:
        await asyncio.gather(*(request_sync(client, ref) for ref in plan.hand_over))
    return plan


@dg.sensor(
    job=sync_executions_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Finds executions closed since the cursor and requests a sync run for each day "
        "that received some; hands running executions to the sync coordinator."
    ),
)
def new_executions_sensor(
    context: dg.SensorEvaluationContext, temporal: TemporalResource
) -> dg.SensorResult:
    cursor = ExecutionCursor.from_json(context.cursor, datetime.now(UTC))
    plan = temporal.run(lambda client: evaluate_tick(client, cursor), timeout=120)
    requests = plan.run_requests()
    if plan.hand_over:
        context.log.info(f"handed {len(plan.hand_over)} running execution(s) to the coordinator")
    return dg.SensorResult(
        run_requests=requests,
        cursor=plan.cursor.to_json(),
        skip_reason=None if requests else "no newly closed executions",
    )


#: How often the statistics automation is evaluated (each evaluation reads only the event
#: log of the instance; a refresh costs a dbt run, so one per evaluation at most).
STATISTICS_AUTOMATION_INTERVAL_SECONDS: Final = 15

statistics_after_sync = dg.AutomationConditionSensorDefinition(
    "statistics_after_sync",
    target=dg.AssetSelection.assets(statistics_dbt_models),
    run_tags=STATISTICS_REFRESH_TAGS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=STATISTICS_AUTOMATION_INTERVAL_SECONDS,
    # Evaluated in the code location like any sensor (not in the daemon process), so the
    # conditions are always this code's and tests can evaluate the very same definition.
    use_user_code_server=True,
    description=(
        "Refreshes the statistics and trend models (one run per tick) after synced histories "
        "were materialized by any run: the new-executions sensor's, a partition materialized "
        "by hand, or a backfill of any range (once, when it has finished). The schedule "
        "statistics_refresh_schedule stays as the safety net."
    ),
)


#: How often alert rules are evaluated and due deliveries sent. An alert reaches its channel
#: within about one interval after the execution's row is synced (bench/bench_alerts.py).
ALERTS_SENSOR_INTERVAL_SECONDS: Final = 5


@dg.sensor(
    minimum_interval_seconds=ALERTS_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Evaluates every enabled alert rule against the synced tables and sends the alerts "
        "that are due (new ones, and failed deliveries whose backoff has passed). The logic "
        "is wfmon.alerts.run_tick; this sensor only calls it."
    ),
)
def alerts_sensor(
    context: dg.SensorEvaluationContext,
    database: WfmonDatabaseResource,
    connections: ProjectConnectionsResource,
) -> dg.SkipReason:
    try:
        keyring = connections.keyring()
    except KeyringError as exc:
        return dg.SkipReason(f"alerts are off: {exc}")
    report = run_tick(database.database(), keyring, NetworkPolicy.from_env())
    if report.delivered.sent or report.delivered.failed:
        context.log.info(report.summary())
    return dg.SkipReason(report.summary())
