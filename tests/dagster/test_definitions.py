"""Definitions load and validate; the graph reads well; the sensor's cursor logic; the
instance file. No services needed."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.statistics import FOLLOW_SYNC_LABEL
from resources.dbt import STATISTICS_REFRESH_TAGS
from wfmon.sync.discovery import DiscoveredExecution
from wfmon.sync.messages import ExecutionRef
from wfmon_defs.definitions import build_definitions, defs
from wfmon_defs.instance import dagster_storage_url, instance_config, write_instance
from wfmon_defs.sensors import OVERLAP, ExecutionCursor, plan_tick, run_key_for

K = dg.AssetKey


def test_definitions_load_and_validate() -> None:
    dg.Definitions.validate_loadable(defs)
    dg.Definitions.validate_loadable(build_definitions(database_url="postgresql://u:p@h/db"))


def test_asset_graph_lineage_groups_owners_and_kinds() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "discovered_executions",
        "workflow_executions",
        "component_executions",
        "workflow_statistics",
        "project_statistics",
        "workflow_daily_trends",
        "component_daily_trends",
    } <= keys
    assert graph.get(K("workflow_executions")).parent_keys == {K("discovered_executions")}
    for model in ("workflow_statistics", "project_statistics", "component_daily_trends"):
        assert {K("workflow_executions"), K("component_executions")} <= graph.get(
            K(model)
        ).parent_keys
    assert K("workflow_executions") in graph.get(K("workflow_daily_trends")).parent_keys
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    assert specs[K("workflow_executions")].group_name == "sync"
    assert specs[K("workflow_statistics")].group_name == "statistics"
    assert specs[K("component_daily_trends")].group_name == "trends"
    for key in (K("component_executions"), K("project_statistics")):
        assert specs[key].owners == ["team:data-platform"]
        assert specs[key].description
        assert specs[key].metadata.get("dagster/column_schema") is not None
    assert {"temporal", "postgres"} <= set(specs[K("workflow_executions")].kinds)
    assert "dbt" in specs[K("workflow_statistics")].kinds
    assert graph.get(K("workflow_executions")).partitions_def is not None
    assert graph.get(K("workflow_statistics")).partitions_def is None


def test_checks_jobs_sensors_schedules_are_defined() -> None:
    checks = {
        (c.asset_key.to_user_string(), c.name) for c in defs.resolve_asset_graph().asset_check_keys
    }
    assert ("workflow_executions", "every_closed_execution_synced") in checks
    assert ("component_executions", "no_component_row_without_synced_execution") in checks
    assert ("workflow_statistics", "statistics_match_executions") in checks
    assert ("workflow_statistics", "unique_workflow_statistics_workflow_id") in checks
    assert ("failure_groups", "groups_match_their_days") in checks
    assert defs.resolve_job_def("sync_executions_job")
    assert defs.resolve_job_def("refresh_statistics_job")
    assert defs.resolve_sensor_def("new_executions_sensor")
    automation = defs.resolve_sensor_def("statistics_after_sync")
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    assert automation.run_tags == STATISTICS_REFRESH_TAGS
    assert defs.resolve_schedule_def("statistics_refresh_schedule").cron_schedule == "*/5 * * * *"
    nightly = defs.resolve_schedule_def("nightly_reconciliation")
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    ) as context:
        request = nightly.evaluate_tick(context).run_requests
    assert request is not None and len(request) == 1
    assert request[0].partition_key_range == dg.PartitionKeyRange("2026-03-08", "2026-03-09")
    recompute = defs.resolve_schedule_def("nightly_statistics_recompute")
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 10, 3, tzinfo=UTC)
    ) as context:
        run_config = recompute.evaluate_tick(context).run_requests[0].run_config  # type: ignore[index]
    dg.validate_run_config(defs.resolve_job_def("refresh_statistics_job"), run_config)


def test_statistics_models_follow_the_sync_assets() -> None:
    """Every dbt model (and nothing else) carries the follow-sync condition, and the
    automation sensor targets exactly those models."""
    graph = defs.resolve_asset_graph()
    models = {
        K(m)
        for m in (
            "workflow_statistics",
            "project_statistics",
            "workflow_daily_trends",
            "component_daily_trends",
            "failure_group_executions",
            "failure_group_days",
            "failure_groups",
        )
    }
    conditioned = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition}
    assert conditioned == models
    for key in models:
        condition = graph.get(key).automation_condition
        assert condition is not None and condition.get_label() == FOLLOW_SYNC_LABEL
    sensor = defs.resolve_sensor_def("statistics_after_sync")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.asset_selection.resolve(graph) == models


def _exec(wf: str, closed: datetime | None) -> DiscoveredExecution:
    return DiscoveredExecution(
        ref=ExecutionRef("default", wf, f"run-{wf}"),
        workflow_type="T",
        task_queue="q",
        status="completed" if closed else "running",
        started_at=(closed or datetime.now(UTC)) - timedelta(seconds=1),
        closed_at=closed,
    )


def test_plan_tick_groups_by_day_and_skips_what_the_overlap_already_handed_out() -> None:
    t0 = datetime(2026, 5, 1, 23, 59, 50, tzinfo=UTC)
    a, b, c = (
        _exec("a", t0),
        _exec("b", t0 + timedelta(seconds=20)),
        _exec("c", t0 + timedelta(seconds=25)),
    )
    first = plan_tick(ExecutionCursor(closed_after=t0 - timedelta(minutes=1)), [a, b, c], [])
    assert first.new_by_partition == {
        "2026-05-01": [a.ref.key],
        "2026-05-02": [b.ref.key, c.ref.key],
    }
    assert first.cursor.closed_after == c.closed_at
    # The next listing looks OVERLAP back and sees b and c again, plus a late-indexed d.
    d = _exec("d", t0 + timedelta(seconds=24))
    second = plan_tick(first.cursor, [b, d, c], [])
    assert second.new_by_partition == {"2026-05-02": [d.ref.key]}
    assert all(
        datetime.fromisoformat(t) > second.cursor.closed_after - OVERLAP
        for t in second.cursor.recent.values()
    )
    requests = second.run_requests()
    assert [r.run_key for r in requests] == [run_key_for("2026-05-02", [d.ref.key])]


def test_run_keys_only_repeat_for_the_same_set() -> None:
    assert run_key_for("2026-05-02", ["x", "y"]) == run_key_for("2026-05-02", ["y", "x"])
    assert run_key_for("2026-05-02", ["x", "y"]) != run_key_for("2026-05-02", ["x", "y", "z"])
    assert run_key_for("2026-05-02", ["x"]) != run_key_for("2026-05-03", ["x"])


def test_running_executions_are_handed_over_once() -> None:
    cursor = ExecutionCursor(closed_after=datetime(2026, 5, 1, tzinfo=UTC))
    r1, r2 = _exec("r1", None), _exec("r2", None)
    first = plan_tick(cursor, [], [r1])
    assert first.hand_over == [r1.ref]
    second = plan_tick(first.cursor, [], [r1, r2])
    assert second.hand_over == [r2.ref]
    third = plan_tick(second.cursor, [], [r2])
    assert third.hand_over == [] and third.cursor.live == [r2.ref.key]


def test_cursor_round_trips_and_accepts_a_bare_timestamp() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    cursor = ExecutionCursor(closed_after=now, recent={"k": now.isoformat()}, live=["l"])
    assert ExecutionCursor.from_json(cursor.to_json(), now) == cursor
    assert ExecutionCursor.from_json("2026-04-01T00:00:00", now).closed_after == datetime(
        2026, 4, 1, tzinfo=UTC
    )
    assert ExecutionCursor.from_json(None, now).closed_after < now


def test_instance_file_uses_psycopg2_and_is_private(tmp_path: Path) -> None:
    url = "postgresql://wfmon:s3cret@127.0.0.1:5433/dagster"
    write_instance(tmp_path / "home", url)
    path = tmp_path / "home" / "dagster.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    body = path.read_text()
    config = json.loads(body.split("\n", 1)[1])
    assert config == instance_config(url)
    assert config["storage"]["postgres"]["postgres_url"].startswith("postgresql+psycopg2://")
    assert dagster_storage_url("postgresql+psycopg://u@h/dagster").startswith(
        "postgresql+psycopg2://"
    )
    with pytest.raises(ValueError, match="postgresql"):
        dagster_storage_url("mysql://u@h/db")
