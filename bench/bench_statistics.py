"""Statistics refresh (dbt, incremental MERGE) and the execution sensor's tick, at scale.

1. Statistics: N executions (default 100,000) with 20 component rows each (2,000,000) over
   1,000 workflows in 100 projects, generated in SQL. Measured: the first refresh (every key
   computed), a full recompute (``full_recompute``: the nightly job), a refresh with nothing
   new (dbt's fixed cost), and a refresh after 1% of the workflows received new executions.
   The ratio incremental / full recompute is reported on the models' own execution time
   (from dbt's run_results.json) and on wall time (which includes dbt's ~3-4 s startup).
2. Sensor: one tick (``new_executions_sensor`` evaluated through Dagster, Temporal listing
   included) with 500 executions known to Temporal vs with M (default 5,000) known, versus
   the baseline a cursorless sensor would pay: listing every closed execution. Executions
   are created closed (started with a 1 s run timeout on a queue nobody polls). M is small
   because the dev server's SQLite creates only ~55 executions/s on 2 cores (100,000 would
   take half an hour). The tick reads no database table: the executions of part 1 sit in
   PostgreSQL meanwhile and cost it nothing.

``WFMON_BENCH_STATS_EXECUTIONS`` and ``WFMON_BENCH_SENSOR_EXECUTIONS`` scale both parts.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from temporalio.client import Client

from bench.common import write_result
from resources.dbt import WfmonDbtResource
from resources.temporal import TemporalResource
from tests.conftest import make_state_dir
from wfmon.db import Database
from wfmon.db.accounts import create_project, create_user
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations
from wfmon.sync.discovery import discover
from wfmon_defs.sensors import OVERLAP, ExecutionCursor, new_executions_sensor

WORKFLOWS = 1000
PROJECTS = 100
COMPONENTS_PER_EXECUTION = 20
NEW_EXECUTIONS_PER_CHANGED_WORKFLOW = 20
MODELS = (
    "workflow_statistics",
    "project_statistics",
    "workflow_daily_trends",
    "component_daily_trends",
)


def _seed(db: Database, executions: int) -> dict[str, Any]:
    """Users, projects, workflows, executions and component rows; returns ids and timings."""
    auth = uuid.uuid4()
    with db.as_system() as conn:
        user = create_user(conn, auth_user_id=auth, email="bench-stats@example.com")
    with db.as_user(auth) as conn:
        projects = [
            create_project(conn, name=f"bench-{i}", created_by=user.id).id for i in range(PROJECTS)
        ]
        conn.execute(
            """
            INSERT INTO workflows (project_id, created_by, name, visibility_id)
            SELECT (%s::uuid[])[1 + g %% %s], %s, 'bench-wf-' || g,
                   (SELECT id FROM component_visibility WHERE name = 'private')
            FROM generate_series(0, %s - 1) g
            """,
            (projects, PROJECTS, user.id, WORKFLOWS),
        )
    t0 = time.perf_counter()
    with db.as_system() as conn:
        conn.execute(
            """
            CREATE TEMP TABLE bench_wf ON COMMIT DROP AS
            SELECT (row_number() OVER (ORDER BY id)) - 1 AS i, id, project_id
            FROM workflows WHERE name LIKE 'bench-wf-%%'
            """
        )
        _insert_executions(conn, user.id, 1, executions, "now() - interval '1 day'")
    seconds = time.perf_counter() - t0
    with db.as_system() as conn:
        conn.execute("ANALYZE workflow_executions")
        conn.execute("ANALYZE component_executions")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM workflow_executions) AS e, "
            "(SELECT count(*) FROM component_executions) AS c"
        ).fetchone()
    assert counts is not None
    return {
        "user_id": user.id,
        "executions": counts["e"],
        "component_rows": counts["c"],
        "generate_seconds": round(seconds, 1),
    }


def _insert_executions(
    conn: Any, user_id: uuid.UUID, first: int, count: int, updated_at: str, workflows: str = ""
) -> None:
    """Executions ``first .. first+count-1`` (round robin over bench_wf, or over the
    workflows of ``workflows`` = a WHERE on bench_wf) plus their component rows."""
    conn.execute(
        f"""
        WITH wf AS (SELECT row_number() OVER (ORDER BY i) - 1 AS k, id, project_id
                    FROM bench_wf {workflows}),
        n AS (SELECT count(*) AS n FROM wf),
        g AS (
            SELECT g, now() - (random() * interval '30 days') AS started,
                   (100 + (random() * 5000))::bigint AS d
            FROM generate_series(%s, %s + %s - 1) g
        )
        INSERT INTO workflow_executions (
            temporal_namespace, temporal_workflow_id, temporal_run_id, workflow_type, task_queue,
            status, started_at, closed_at, duration_ms, created_by, project_id, workflow_id,
            history_sync_status, history_synced_at, updated_at)
        SELECT 'bench', 'bench-' || g.g, md5(g.g::text), 'WfmonBuilderWorkflow',
               'queue-' || (g.g %% 5),
               CASE WHEN g.g %% 10 = 0 THEN 'failed' WHEN g.g %% 37 = 0 THEN 'timed_out'
                    ELSE 'completed' END,
               g.started, g.started + g.d * interval '1 millisecond', g.d, %s,
               wf.project_id, wf.id, 'synced', now(), {updated_at}
        FROM g, n JOIN wf ON true
        WHERE wf.k = g.g %% n.n
        """,
        (first, first, count, user_id),
    )
    conn.execute(
        f"""
        INSERT INTO component_executions (
            workflow_execution_id, node_id, component_id, component_name, activity_type,
            scheduled_event_id, status, started_at, completed_at, duration_ms, retry_count,
            is_expected_retry, temporal_attempt, created_at)
        SELECT e.id, 'n' || i, c.id, c.name, c.name, 5 + i * 6,
               CASE WHEN e.status = 'failed' AND i = {COMPONENTS_PER_EXECUTION}
                    THEN 'failed' ELSE 'completed' END,
               e.started_at, e.started_at + interval '10 milliseconds', 10 + (i * 7) %% 100,
               CASE WHEN i %% 13 = 0 THEN 1 ELSE 0 END, i %% 13 = 0,
               CASE WHEN i %% 13 = 0 THEN 2 ELSE 1 END, now()
        FROM workflow_executions e
        CROSS JOIN generate_series(1, {COMPONENTS_PER_EXECUTION}) i
        JOIN (SELECT row_number() OVER (ORDER BY name) - 1 AS k, id, name FROM components) c
          ON c.k = i %% (SELECT count(*) FROM components)
        WHERE e.temporal_namespace = 'bench'
          AND e.temporal_workflow_id IN (
              SELECT 'bench-' || g FROM generate_series(%s, %s + %s - 1) g)
        """,
        (first, first, count),
    )


def _refresh(dbt: WfmonDbtResource, full_recompute: bool = False) -> dict[str, float]:
    args = ["run", "--select", " ".join(MODELS)]
    if full_recompute:
        args += ["--vars", json.dumps({"full_recompute": True})]
    t0 = time.perf_counter()
    invocation = dbt.cli(args)
    invocation.wait()
    wall = time.perf_counter() - t0
    results = json.loads((Path(invocation.target_path) / "run_results.json").read_text())
    models = {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results["results"]}
    return {
        "wall_seconds": round(wall, 3),
        "models_seconds": round(sum(models.values()), 3),
        **{f"{k}_seconds": round(v, 3) for k, v in models.items()},
    }


def _statistics(db: Database, database_url: str, executions: int) -> dict[str, Any]:
    seeded = _seed(db, executions)
    dbt = WfmonDbtResource(database_url=database_url)
    try:
        return _measure(db, dbt, seeded, executions)
    finally:
        dbt.teardown_after_execution(dg.build_init_resource_context())


def _measure(
    db: Database, dbt: WfmonDbtResource, seeded: dict[str, Any], executions: int
) -> dict[str, Any]:
    first = _refresh(dbt)
    recompute = _refresh(dbt, full_recompute=True)
    nothing_new = _refresh(dbt)
    with db.as_system() as conn:
        mark = conn.execute("SELECT max(updated_at) AS t FROM workflow_statistics").fetchone()
    assert mark is not None
    # 1% of the workflows (in 10 different projects) receive new executions.
    changed = WORKFLOWS // 100
    new = changed * NEW_EXECUTIONS_PER_CHANGED_WORKFLOW
    with db.as_system() as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_wf ON COMMIT DROP AS "
            "SELECT (row_number() OVER (ORDER BY id)) - 1 AS i, id, project_id "
            "FROM workflows WHERE name LIKE 'bench-wf-%%'"
        )
        _insert_executions(
            conn, seeded["user_id"], executions + 1, new, "now()", f"WHERE i < {changed}"
        )
    incremental = _refresh(dbt)
    with db.as_system() as conn:
        touched = conn.execute(
            "SELECT count(*) AS n FROM workflow_statistics WHERE updated_at > %s", (mark["t"],)
        ).fetchone()
    assert touched is not None
    return {
        "executions": seeded["executions"],
        "component_rows": seeded["component_rows"],
        "workflows": WORKFLOWS,
        "projects": PROJECTS,
        "generate_seconds": seeded["generate_seconds"],
        "first_refresh": first,
        "full_recompute": recompute,
        "refresh_nothing_new": nothing_new,
        "changed_workflows": changed,
        "new_executions": new,
        "refresh_after_1pct": incremental,
        "workflow_rows_recomputed": touched["n"],
        "ratio_models_incremental_vs_full": round(
            incremental["models_seconds"] / recompute["models_seconds"], 4
        ),
        "ratio_wall_incremental_vs_full": round(
            incremental["wall_seconds"] / recompute["wall_seconds"], 4
        ),
    }


async def _create_closed(client: Client, count: int, prefix: str) -> None:
    """``count`` executions that close on their own (1 s run timeout, nobody polls)."""
    gate = asyncio.Semaphore(128)
    queue = f"bench-nobody-{uuid.uuid4().hex[:6]}"

    async def one(i: int) -> None:
        async with gate:
            await client.start_workflow(
                "BenchNothing",
                id=f"{prefix}-{i}",
                task_queue=queue,
                run_timeout=timedelta(seconds=1),
            )

    await asyncio.gather(*(one(i) for i in range(count)))


async def _wait_closed(client: Client, total: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = (await client.count_workflows("ExecutionStatus = 'Running'")).count
        closed = (await client.count_workflows("ExecutionStatus != 'Running'")).count
        if running == 0 and closed >= total:
            return
        await asyncio.sleep(1)
    raise TimeoutError("executions did not close in time")


def _tick_seconds(address: str, cursor: str, repeat: int = 15) -> float:
    resource = TemporalResource(address=address)
    times = []
    for _ in range(repeat):
        context = dg.build_sensor_context(cursor=cursor, resources={"temporal": resource})
        t0 = time.perf_counter()
        result = new_executions_sensor(context)
        times.append(time.perf_counter() - t0)
        assert isinstance(result, dg.SensorResult)
    return sorted(times)[len(times) // 2]


def _sensor(address: str, known: int) -> dict[str, Any]:
    small = 500

    async def phase(count: int, prefix: str, total: int) -> tuple[float, float]:
        client = await Client.connect(address)
        t0 = time.perf_counter()
        await _create_closed(client, count, prefix)
        await _wait_closed(client, total)
        created = time.perf_counter() - t0
        # Listing everything: what a sensor without a cursor would do on each tick.
        t1 = time.perf_counter()
        listed = await discover(client)
        assert len(listed) >= total
        return created, time.perf_counter() - t1

    created_small, list_all_small = asyncio.run(phase(small, "small", small))
    time.sleep(OVERLAP.total_seconds() + 1)  # the known ones are older than the overlap
    cursor = ExecutionCursor(closed_after=datetime.now(UTC)).to_json()
    tick_small = _tick_seconds(address, cursor)
    created_big, list_all_big = asyncio.run(phase(known - small, "big", known))
    time.sleep(OVERLAP.total_seconds() + 1)
    cursor = ExecutionCursor(closed_after=datetime.now(UTC)).to_json()
    tick_big = _tick_seconds(address, cursor)
    return {
        "known_small": small,
        "known_large": known,
        "create_seconds": round(created_small + created_big, 1),
        "tick_seconds_small": round(tick_small, 4),
        "tick_seconds_large": round(tick_big, 4),
        "tick_growth": round(tick_big / tick_small, 2),
        "list_all_seconds_small": round(list_all_small, 3),
        "list_all_seconds_large": round(list_all_big, 3),
    }


def main() -> None:
    executions = int(os.environ.get("WFMON_BENCH_STATS_EXECUTIONS", "100000"))
    known = int(os.environ.get("WFMON_BENCH_SENSOR_EXECUTIONS", "5000"))
    state = make_state_dir("wfmon-bench-stats-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        with Database(endpoints.database_url) as db:
            stats = _statistics(db, endpoints.database_url, executions)
        sensor = _sensor(endpoints.temporal_address, known)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    figures = {"statistics": stats, "sensor": sensor}
    write_result(
        "statistics",
        figures,
        f"{stats['executions']:,} exec / {stats['component_rows']:,} rows: full "
        f"{stats['full_recompute']['models_seconds']:.2f}s, 1% of workflows "
        f"{stats['refresh_after_1pct']['models_seconds']:.2f}s "
        f"(ratio {stats['ratio_models_incremental_vs_full']:.3f}; wall "
        f"{stats['refresh_after_1pct']['wall_seconds']:.1f}s vs "
        f"{stats['full_recompute']['wall_seconds']:.1f}s); sensor tick "
        f"{sensor['tick_seconds_small'] * 1000:.0f} ms @ {sensor['known_small']:,} vs "
        f"{sensor['tick_seconds_large'] * 1000:.0f} ms @ {sensor['known_large']:,} known "
        f"(list-all {sensor['list_all_seconds_large']:.1f}s)",
    )


if __name__ == "__main__":
    main()
