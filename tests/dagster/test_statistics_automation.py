"""The statistics follow synced histories: materializations of the sync assets (a 100-day
backfill in one run, separate partition runs, a run still in progress) lead the
automation-condition sensor ``statistics_after_sync`` to request exactly one refresh of the
four dbt models, which then fills the statistics. Real PostgreSQL, Temporal, sync worker,
dbt and a persistent Dagster instance; the sensor definition of ``wfmon_defs`` is evaluated
tick by tick with Dagster's sensor test API, as the daemon evaluates it, on dagster-postgres
storage.

Named to run after ``test_pipeline.py``: its executions must not fall into that module's
sensor look-back window (it asserts exact counts for the namespace's newest executions).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from assets.executions import COMPONENT_EXECUTIONS, DISCOVERED, WORKFLOW_EXECUTIONS
from assets.partitions import PARTITION_FORMAT, partition_key_for
from assets.statistics import WORKFLOW_STATISTICS
from resources.dbt import STATISTICS_REFRESH_TAGS
from tests.dagster.conftest import NAMESPACE, Harness
from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.sync.messages import ExecutionRef
from wfmon.testing import WorkflowOwner, make_owner
from wfmon_defs.instance import PROJECT_ROOT, dagster_environment, write_instance
from wfmon_defs.jobs import RANGE_END_TAG, RANGE_START_TAG

pytestmark = pytest.mark.timeout(300)

K = dg.AssetKey
STATISTICS_MODELS = {
    K("workflow_statistics"),
    K("project_statistics"),
    K("workflow_daily_trends"),
    K("component_daily_trends"),
    # Failure groups are dbt models next to the statistics, refreshed by the same automation.
    K("failure_group_executions"),
    K("failure_group_days"),
    K("failure_groups"),
}
SYNC_ASSETS = [DISCOVERED, WORKFLOW_EXECUTIONS, COMPONENT_EXECUTIONS]
BACKFILL_DAYS = 100


class Ticker:
    """Evaluates the code location's ``statistics_after_sync`` sensor, carrying its cursor
    from tick to tick as the daemon does."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs = defs
        self.instance = instance
        self.sensor = defs.resolve_sensor_def("statistics_after_sync")
        self.cursor: str | None = None

    def tick(self) -> list[dg.RunRequest]:
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=self.defs
        ) as context:
            data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return list(data.run_requests or [])


def day_offset(day: str, days: int) -> str:
    return (datetime.strptime(day, PARTITION_FORMAT) + timedelta(days=days)).strftime(
        PARTITION_FORMAT
    )


def close_day(h: Harness, ref: ExecutionRef) -> str:
    desc = h.run(h.client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id).describe())
    assert desc.close_time is not None
    return partition_key_for(desc.close_time)


def sync_run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    tags: dict[str, str] | None = None,
    partition_key: str | None = None,
    resync: bool = False,
) -> dg.ExecuteInProcessResult:
    """Materialize the sync assets as the UI does (the implicit asset job): a range of days
    through the range tags (one run, the single-run backfill policy), or one day."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        asset_selection=SYNC_ASSETS,
        tags=tags,
        partition_key=partition_key,
        run_config={"ops": {"sync_executions": {"config": {"resync": resync}}}},
        instance=instance,
    )


def refresh_request(requests: Sequence[dg.RunRequest]) -> dg.RunRequest:
    """The single refresh the sensor requested: all four models, with the run tag the
    instance limits to one concurrent run."""
    assert len(requests) == 1, [r.asset_selection for r in requests]
    request = requests[0]
    assert set(request.asset_selection or []) == STATISTICS_MODELS
    assert request.partition_key is None
    assert STATISTICS_REFRESH_TAGS.items() <= request.tags.items()
    return request


def statistics_of(db: Database, owner: WorkflowOwner) -> tuple[Any, Any, int]:
    with db.as_system() as conn:
        wf = conn.execute(
            "SELECT total_runs, successful_runs, failed_runs FROM workflow_statistics "
            "WHERE workflow_id = %s",
            (owner.workflow.id,),
        ).fetchone()
        proj = conn.execute(
            "SELECT total_executions, total_failures FROM project_statistics WHERE project_id = %s",
            (owner.project.id,),
        ).fetchone()
        trend = conn.execute(
            "SELECT coalesce(sum(runs), 0) AS runs FROM workflow_daily_trends "
            "WHERE workflow_id = %s",
            (owner.workflow.id,),
        ).fetchone()
    assert trend is not None
    return (
        None if wf is None else (wf["total_runs"], wf["successful_runs"], wf["failed_runs"]),
        None if proj is None else (proj["total_executions"], proj["total_failures"]),
        int(trend["runs"]),
    )


@pytest.fixture
def dagster_home(tmp_path: Path, endpoints: Endpoints) -> Path:
    """wfmon's ``dagster.yaml`` (dagster-postgres on the session's ``dagster`` database)."""
    home = tmp_path / "dagster-home"
    write_instance(home, endpoints.dagster_database_url)
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as inst:
        yield inst


class RunProcess:
    """A job run in a process of its own on the same instance, as a run worker is (runs
    in threads of one process would race on Dagster's logging set-up)."""

    def __init__(
        self, home: Path, database_url: str, endpoints: Endpoints, job: str, **kwargs: Any
    ) -> None:
        script = (
            "import sys, dagster as dg\n"
            "from wfmon_defs.definitions import build_definitions\n"
            "defs = build_definitions(database_url=sys.argv[1], temporal_address=sys.argv[2],"
            " temporal_namespace=sys.argv[3])\n"
            "with dg.DagsterInstance.get() as instance:\n"
            f"    result = defs.resolve_job_def({job!r}).execute_in_process("
            f"instance=instance, raise_on_error=False, **{kwargs!r})\n"
            "sys.exit(0 if result.success else 1)\n"
        )
        self.log = home / f"{job}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", script, database_url, endpoints.temporal_address, NAMESPACE],
                env=dagster_environment(home),
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout: float = 120) -> None:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.stop()
        assert code == 0, self.log.read_text()[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def erin(db: Database) -> WorkflowOwner:
    return make_owner(db, "erin")


def test_backfill_and_partition_runs_are_followed_by_one_statistics_refresh(
    harness: Harness,
    defs: dg.Definitions,
    db: Database,
    instance: dg.DagsterInstance,
    erin: WorkflowOwner,
) -> None:
    h = harness

    async def executions() -> list[ExecutionRef]:
        return list(await asyncio.gather(*(h.execute(erin, k) for k in kinds)))

    kinds = ["success", "success", "fail"]
    refs = h.run(executions())
    days = sorted({close_day(h, r) for r in refs})
    last = days[-1]
    first = day_offset(last, -(BACKFILL_DAYS - 1))
    ticker = Ticker(defs, instance)

    # The sensor's first evaluation only starts its history: nothing was synced yet.
    assert ticker.tick() == []

    # A backfill of 100 days, launched as the UI launches it: one run for the range.
    backfill = sync_run(defs, instance, tags={RANGE_START_TAG: first, RANGE_END_TAG: last})
    assert backfill.success
    materialized = [
        e.partition
        for e in backfill.get_asset_materialization_events()
        if e.asset_key == WORKFLOW_EXECUTIONS
    ]
    assert len(set(materialized)) == BACKFILL_DAYS
    assert statistics_of(db, erin) == (None, None, 0), "no refresh has run yet"

    # One refresh for the whole backfill, not one per partition.
    request = refresh_request(ticker.tick())
    started = time.perf_counter()
    refresh = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=list(request.asset_selection or []), tags=request.tags, instance=instance
    )
    refresh_seconds = time.perf_counter() - started
    assert refresh.success
    assert all(e.passed for e in refresh.get_asset_check_evaluations())
    assert statistics_of(db, erin) == ((3, 2, 1), (3, 1), 3)
    print(f"refresh requested by the automation: {refresh_seconds:.1f}s")

    # The refresh's own materializations do not trigger another one.
    assert ticker.tick() == []
    assert ticker.tick() == []

    # Three separate partition runs (as the new-executions sensor launches them) between
    # two ticks: still one refresh.
    for offset in (0, -1, -2):
        assert sync_run(defs, instance, partition_key=day_offset(last, offset)).success
    refresh_request(ticker.tick())
    assert ticker.tick() == [], "requested once; nothing new since"


def test_no_refresh_while_a_sync_run_is_in_progress(
    harness: Harness,
    defs: dg.Definitions,
    db: Database,
    database_url: str,
    endpoints: Endpoints,
    dagster_home: Path,
    instance: dg.DagsterInstance,
    erin: WorkflowOwner,
) -> None:
    """A sync run still running holds the refresh back (it would miss that run's rows);
    the refresh is requested once, after the run has finished."""
    h = harness
    ref = h.run(h.execute(erin, "success"))
    day = close_day(h, ref)
    ticker = Ticker(defs, instance)
    assert ticker.tick() == []
    assert sync_run(defs, instance, partition_key=day_offset(day, -3)).success

    with psycopg.connect(database_url) as blocker:
        # The sync of the day cannot write its component rows until this lock goes.
        blocker.execute("SET ROLE wfmon_system")  # the login role itself may touch nothing
        blocker.execute("LOCK TABLE component_executions IN EXCLUSIVE MODE")
        run = RunProcess(
            dagster_home,
            database_url,
            endpoints,
            "sync_executions_job",
            partition_key=day,
            run_config={"ops": {"sync_executions": {"config": {"resync": True}}}},
        )
        try:
            wait_until(lambda: _lease_taken(db, ref), "the sync run to reach its write")
            assert run.proc.poll() is None
            assert ticker.tick() == [], "a refresh now would not see the running sync's rows"
        finally:
            blocker.rollback()
            run.wait()
    refresh_request(ticker.tick())
    assert ticker.tick() == []


def test_a_sync_that_lands_during_a_refresh_gets_a_refresh_of_its_own(
    harness: Harness,
    defs: dg.Definitions,
    db: Database,
    database_url: str,
    endpoints: Endpoints,
    dagster_home: Path,
    instance: dg.DagsterInstance,
    erin: WorkflowOwner,
) -> None:
    """A refresh that was already running (here the schedule's job) may have read before a
    sync committed: its completion does not count as handling that sync, so each model is
    requested again once its part of that run is done, and the new execution is counted."""
    h = harness
    ref = h.run(h.execute(erin, "success"))
    day = close_day(h, ref)
    ticker = Ticker(defs, instance)
    assert ticker.tick() == []

    requested: list[dg.RunRequest] = []
    with psycopg.connect(database_url) as blocker:
        # The running refresh cannot MERGE into workflow_statistics until this lock goes
        # (the other models go on and finish in that run meanwhile).
        blocker.execute("SET ROLE wfmon_system")  # the login role itself may touch nothing
        blocker.execute("LOCK TABLE workflow_statistics IN EXCLUSIVE MODE")
        run = RunProcess(dagster_home, database_url, endpoints, "refresh_statistics_job")
        try:
            # The run's process imports the definitions and starts dbt first (slow on a
            # busy machine: 140 s were seen at load 15).
            wait_until(
                lambda: _waiting_on_lock(db, "workflow_statistics"),
                "the refresh to reach its MERGE",
                timeout=240,
            )
            assert sync_run(defs, instance, partition_key=day).success
            # Models the running refresh already finished (before the sync) may be asked
            # for again now; the one still running is not.
            during = ticker.tick()
            assert all(WORKFLOW_STATISTICS not in (r.asset_selection or []) for r in during)
            requested += during
        finally:
            blocker.rollback()
            run.wait()
    after = ticker.tick()
    assert [WORKFLOW_STATISTICS in (r.asset_selection or []) for r in after] == [True]
    requested += after
    assert ticker.tick() == []
    selected = [k for r in requested for k in r.asset_selection or []]
    assert sorted(selected) == sorted(STATISTICS_MODELS), "each model once, none left out"
    for request in requested:
        assert STATISTICS_REFRESH_TAGS.items() <= request.tags.items()
        refresh = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=list(request.asset_selection or []),
            tags=request.tags,
            instance=instance,
        )
        assert refresh.success
    assert statistics_of(db, erin) == ((1, 1, 0), (1, 0), 1)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _lease_taken(db: Database, ref: ExecutionRef) -> bool:
    with db.as_system() as conn:
        row = conn.execute(
            "SELECT sync_lease_owner FROM workflow_executions "
            "WHERE temporal_workflow_id = %s AND temporal_run_id = %s",
            (ref.workflow_id, ref.run_id),
        ).fetchone()
    return row is not None and row["sync_lease_owner"] is not None


def _waiting_on_lock(db: Database, table: str) -> bool:
    """Whether some session waits for a lock on ``table``."""
    with db.as_system() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = %s AND NOT l.granted",
            (table,),
        ).fetchone()
    return row is not None and row["n"] > 0
