"""The data platform end to end on real services: sensor -> partition sync -> dbt statistics
-> checks -> DataFrames, in one ordered scenario (each step builds on the previous one)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from assets.executions import ALL_SYNCED_CHECK, COMPONENT_EXECUTIONS, WORKFLOW_EXECUTIONS
from assets.partitions import partition_key_for
from resources.temporal import TemporalResource
from tests.dagster.conftest import NAMESPACE, Harness, WorkflowOwner
from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.sync.messages import ExecutionRef
from wfmon.sync.workflows import SyncCoordinatorWorkflow
from wfmon_defs.jobs import RANGE_END_TAG, RANGE_START_TAG
from wfmon_defs.sensors import ExecutionCursor, new_executions_sensor, run_key_for

pytestmark = pytest.mark.timeout(240)


class State:
    """What the ordered steps hand to each other."""

    refs: list[ExecutionRef]
    partition: str
    cursor: str
    first_run_key: str


state = State()


def close_time(h: Harness, ref: ExecutionRef) -> datetime:
    desc = h.run(h.client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id).describe())
    assert desc.close_time is not None
    return desc.close_time


def tick(defs: dg.Definitions, endpoints: Endpoints, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={
            "temporal": TemporalResource(address=endpoints.temporal_address, namespace=NAMESPACE)
        },
        definitions=defs,
    )
    result = new_executions_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_sensor_requests_the_partitions_of_new_executions(
    harness: Harness,
    defs: dg.Definitions,
    endpoints: Endpoints,
    carol: WorkflowOwner,
    dave: WorkflowOwner,
) -> None:
    h = harness
    begin = datetime.now(UTC) - timedelta(seconds=1)

    async def scenario() -> list[ExecutionRef]:
        kinds: list[tuple[WorkflowOwner | None, str]] = [
            *[(carol, "success")] * 4,
            *[(carol, "retry")] * 2,
            (carol, "fail"),
            *[(dave, "success")] * 2,
            (dave, "fail"),
            (None, "success"),
        ]
        return list(await asyncio.gather(*(h.execute(o, k) for o, k in kinds)))

    state.refs = h.run(scenario())
    closes = [close_time(h, r) for r in state.refs]
    state.partition = partition_key_for(max(closes))

    first = tick(defs, endpoints, begin.isoformat())
    requests = first.run_requests or []
    by_day = {r.partition_key: r for r in requests}
    expected_days = Counter(partition_key_for(t) for t in closes)
    assert set(by_day) == set(expected_days)
    for day, n in expected_days.items():
        assert by_day[day].tags["wfmon/new_executions"] == str(n)
        keys = [
            r.key for r, t in zip(state.refs, closes, strict=True) if partition_key_for(t) == day
        ]
        assert by_day[day].run_key == run_key_for(day, keys)
    assert first.cursor is not None
    cursor = ExecutionCursor.from_json(first.cursor, datetime.now(UTC))
    assert cursor.closed_after == max(closes), "the cursor advances to the newest close time"
    state.cursor = first.cursor
    state.first_run_key = by_day[state.partition].run_key or ""

    # Nothing new: nothing requested, the cursor stays.
    again = tick(defs, endpoints, first.cursor)
    assert not again.run_requests
    assert ExecutionCursor.from_json(again.cursor, datetime.now(UTC)).closed_after == max(closes)

    # One more execution: one more request, under a run key of its own.
    extra = h.run(h.execute(carol, "success"))
    state.refs.append(extra)
    third = tick(defs, endpoints, again.cursor)
    assert [r.tags["wfmon/new_executions"] for r in third.run_requests or []] == ["1"]
    extra_key = (third.run_requests or [])[0].run_key
    assert extra_key == run_key_for(partition_key_for(close_time(h, extra)), [extra.key])
    state.cursor = third.cursor or ""

    # The cursor moved back (reset by hand): the executions are requested again under a
    # key that differs from both earlier ones, so nothing is silently dropped by run-key
    # deduplication; the very same set would map to the very same key.
    back = tick(defs, endpoints, begin.isoformat())
    back_keys = {r.run_key for r in back.run_requests or []}
    assert state.first_run_key not in back_keys and extra_key not in back_keys
    total = sum(int(r.tags["wfmon/new_executions"]) for r in back.run_requests or [])
    assert total == len(state.refs)


def test_sensor_hands_running_executions_to_the_coordinator(
    harness: Harness, defs: dg.Definitions, endpoints: Endpoints, carol: WorkflowOwner
) -> None:
    h = harness
    handle = h.run(h.start_run(carol, "slow"))
    result = tick(defs, endpoints, state.cursor)
    cursor = ExecutionCursor.from_json(result.cursor, datetime.now(UTC))
    key = ExecutionRef(NAMESPACE, handle.id, handle.first_execution_run_id or "").key
    assert key in cursor.live

    async def coordinator_live() -> list[str]:
        coord = h.client.get_workflow_handle(f"wfmon-sync-coordinator-{NAMESPACE}")
        st = await coord.query(SyncCoordinatorWorkflow.state)
        return list(st.live) + list(st.in_flight) + list(st.queued)

    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while key not in h.run(coordinator_live()) and datetime.now(UTC) < deadline:
        h.run(asyncio.sleep(0.2))
    assert key in h.run(coordinator_live()) or _synced_running(h.db, handle.id)
    h.run(handle.result())
    state.refs.append(ExecutionRef(NAMESPACE, handle.id, handle.first_execution_run_id or ""))


def _synced_running(db: Database, workflow_id: str) -> bool:
    with db.as_system() as conn:
        row = conn.execute(
            "SELECT history_sync_status FROM workflow_executions WHERE temporal_workflow_id = %s",
            (workflow_id,),
        ).fetchone()
    return row is not None and row["history_sync_status"] == "synced"


def test_materializing_a_partition_syncs_its_executions(defs: dg.Definitions, db: Database) -> None:
    job = defs.resolve_job_def("sync_executions_job")
    result = job.execute_in_process(
        partition_key=state.partition, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[ALL_SYNCED_CHECK].passed, checks[ALL_SYNCED_CHECK].metadata
    assert all(c.passed for c in checks.values())
    mats = {m.asset_key: m for m in result.get_asset_materialization_events()}
    meta = mats[WORKFLOW_EXECUTIONS].materialization.metadata
    outcomes: Any = meta["sync_outcomes"].value
    assert outcomes.get("synced", 0) >= 1
    assert COMPONENT_EXECUTIONS in mats

    keys = [(r.workflow_id, r.run_id) for r in state.refs]
    with db.as_system() as conn:
        rows = conn.execute(
            "SELECT temporal_workflow_id, temporal_run_id, status, history_sync_status, "
            "(SELECT count(*) FROM component_executions c "
            " WHERE c.workflow_execution_id = e.id) AS n "
            "FROM workflow_executions e WHERE temporal_namespace = %s",
            (NAMESPACE,),
        ).fetchall()
    found = {(r["temporal_workflow_id"], r["temporal_run_id"]): r for r in rows}
    for key in keys:
        assert found[key]["history_sync_status"] == "synced"
        assert found[key]["n"] >= 1
    statuses = Counter(found[k]["status"] for k in keys)
    assert statuses == {"completed": len(keys) - 2, "failed": 2}


def test_dbt_build_fills_the_statistics(
    defs: dg.Definitions, db: Database, carol: WorkflowOwner, dave: WorkflowOwner
) -> None:
    job = defs.resolve_job_def("refresh_statistics_job")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    dbt_checks = [
        e for e in evaluations if e.check_name.startswith(("unique", "not_null", "expression"))
    ]
    assert len(dbt_checks) >= 10, "dbt tests are reported as asset checks"
    assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]

    with db.as_system() as conn:
        wf = conn.execute(
            "SELECT * FROM workflow_statistics WHERE workflow_id = %s", (carol.workflow.id,)
        ).fetchone()
        proj = conn.execute(
            "SELECT * FROM project_statistics WHERE project_id = %s", (dave.project.id,)
        ).fetchone()
        trend = conn.execute(
            "SELECT * FROM component_daily_trends "
            "WHERE workflow_id = %s AND component_name = 'flaky'",
            (carol.workflow.id,),
        ).fetchone()
    # carol: 5 success + 2 retry + 1 fail + 1 slow
    assert wf is not None and (wf["total_runs"], wf["successful_runs"], wf["failed_runs"]) == (
        9,
        8,
        1,
    )
    assert wf["total_errors"] >= 3  # two expected retries + the failing node's attempt(s)
    assert wf["min_duration_ms"] <= wf["avg_duration_ms"] <= wf["max_duration_ms"]
    assert proj is not None and (proj["total_executions"], proj["total_failures"]) == (3, 1)
    assert proj["most_used_workflow_id"] == dave.workflow.id
    assert proj["most_used_task_queue_id"] is not None
    assert trend is not None and trend["runs"] == 2 and trend["retries"] == 2
    assert trend["expected_retries"] == 2

    # Users read their own statistics through RLS; not another user's.
    assert carol.user.auth_user_id is not None and dave.user.auth_user_id is not None
    with db.as_user(carol.user.auth_user_id) as conn:
        own = conn.execute(
            "SELECT count(*) AS n FROM workflow_daily_trends WHERE workflow_id = %s",
            (carol.workflow.id,),
        ).fetchone()
        other = conn.execute(
            "SELECT count(*) AS n FROM project_statistics WHERE project_id = %s", (dave.project.id,)
        ).fetchone()
    assert own is not None and own["n"] >= 1
    assert other is not None and other["n"] == 0


def test_incremental_refresh_touches_only_changed_workflows(
    harness: Harness, defs: dg.Definitions, db: Database, carol: WorkflowOwner, dave: WorkflowOwner
) -> None:
    def updated_at() -> dict[Any, datetime]:
        with db.as_system() as conn:
            rows = conn.execute(
                "SELECT workflow_id, updated_at FROM workflow_statistics"
            ).fetchall()
        return {r["workflow_id"]: r["updated_at"] for r in rows}

    # Backdate the first refresh beyond the lookback, as if it ran an hour ago.
    with db.as_system() as conn:
        conn.execute("UPDATE workflow_statistics SET updated_at = updated_at - interval '1 hour'")
        conn.execute(
            "UPDATE workflow_executions SET updated_at = updated_at - interval '2 hours' "
            "WHERE temporal_namespace = %s",
            (NAMESPACE,),
        )
    before = updated_at()
    ref = harness.run(harness.execute(dave, "success"))
    state.refs.append(ref)
    sync = defs.resolve_job_def("sync_executions_job").execute_in_process(
        partition_key=partition_key_for(close_time(harness, ref)),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert sync.success
    refresh = defs.resolve_job_def("refresh_statistics_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert refresh.success
    after = updated_at()
    changed = {k for k in after if after[k] != before.get(k)}
    # Among this namespace's workflows only dave's changed. (Other tests' workflows in the
    # shared database may have changed within the lookback: they are recomputed too.)
    with db.as_system() as conn:
        ours = {
            r["workflow_id"]
            for r in conn.execute(
                "SELECT DISTINCT workflow_id FROM workflow_executions "
                "WHERE temporal_namespace = %s",
                (NAMESPACE,),
            ).fetchall()
        }
    assert carol.workflow.id in ours and len(ours) >= 3
    assert changed & ours == {dave.workflow.id}
    with db.as_system() as conn:
        row = conn.execute(
            "SELECT total_runs FROM workflow_statistics WHERE workflow_id = %s", (dave.workflow.id,)
        ).fetchone()
    assert row is not None and row["total_runs"] == 4


def test_load_asset_value_returns_dataframes(defs: dg.Definitions, carol: WorkflowOwner) -> None:
    components = defs.load_asset_value("component_executions", partition_key=state.partition)
    assert isinstance(components, pd.DataFrame)
    ours = components[components["workflow_id"] == str(carol.workflow.id)]
    assert set(ours["component_name"]) >= {"transform", "flaky", "always-fail", "sleep"}
    assert {"status", "duration_ms", "retry_count", "is_expected_retry"} <= set(components.columns)
    flaky = ours[ours["component_name"] == "flaky"]
    assert list(flaky["retry_count"]) == [1, 1]

    executions = defs.load_asset_value("workflow_executions", partition_key=state.partition)
    assert isinstance(executions, pd.DataFrame)
    assert {r.run_id for r in state.refs} <= set(executions["temporal_run_id"])

    stats = defs.load_asset_value("workflow_statistics")
    assert isinstance(stats, pd.DataFrame)
    assert str(carol.workflow.id) in set(stats["workflow_id"])
    trends = defs.load_asset_value("component_daily_trends")
    assert isinstance(trends, pd.DataFrame) and len(trends) >= 4


def test_backfill_of_two_partitions(defs: dg.Definitions) -> None:
    """A range of two days is one run (single-run backfill policy), as a UI backfill
    launches it; the checks cover both days."""
    end = state.partition
    start = (datetime.strptime(end, "%Y-%m-%d") - timedelta(days=1)).strftime("%Y-%m-%d")
    job = defs.resolve_job_def("sync_executions_job")
    result = job.execute_in_process(
        tags={RANGE_START_TAG: start, RANGE_END_TAG: end}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[ALL_SYNCED_CHECK].passed
    visible: Any = checks[ALL_SYNCED_CHECK].metadata["visibility_count"].value
    assert visible >= len(state.refs)


def test_notebook_data_cells_run(defs: dg.Definitions) -> None:
    """The example notebook's data cells (not its setup or matplotlib cells) run against
    the test services and give per-component failure rates and durations."""
    path = Path(__file__).resolve().parents[2] / "notebooks" / "component_failures.ipynb"
    notebook = json.loads(path.read_text())
    scope: dict[str, Any] = {"defs": defs, "PARTITION": state.partition, "pd": pd}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and "data" in cell["metadata"].get("tags", []):
            exec(compile("".join(cell["source"]), str(path), "exec"), scope)
    per_component = scope["per_component"]
    assert per_component.loc["always-fail", "failure_rate"] == 1.0
    assert per_component.loc["flaky", "retries"] >= 2
    assert set(scope["daily"].columns) >= {"day", "component_name", "failure_rate", "p95_ms"}
