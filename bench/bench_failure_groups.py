"""Failure groups at scale: the page of a project, and an incremental rebuild.

Data: :func:`bench.debug_data.generate` (``WFMON_BENCH_FAILURES_EXECUTIONS`` executions,
default 50,000, with 20 component rows each, about 8% failing with realistic error texts),
generated server-side.

1. Build: the first build of ``failure_group_days`` + ``failure_groups`` (every key, the
   same work as the nightly full recompute), then 1% new failures (copies of the newest
   failing executions, started now), then the incremental build. Measured on the models'
   own execution time (dbt's run_results.json) and on wall time (dbt's startup included).
   Target: incremental <= 10% of the full build.
2. Page: ``GET /projects/{id}/failures`` (the biggest project's groups, sparklines, HTML)
   through ``wfmon serve`` in its own process, p50/p95 over 100 requests; the baseline in
   the same run is the project's own page (``GET /projects/{id}``). Target: p95 <= 100 ms.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import dagster as dg

from bench.bench_api import SECRET, AppProcess
from bench.common import write_result
from bench.debug_data import NAMESPACE, generate
from resources.dbt import WfmonDbtResource
from tests.conftest import make_state_dir
from wfmon.api.jwt import dev_token
from wfmon.db import Database
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations

MODELS = "failure_group_days failure_groups"
REQUESTS = 100


def _build(dbt: WfmonDbtResource, *, full: bool) -> dict[str, float]:
    # lookback 0: the incremental build looks at exactly what changed since the last one
    # (the default 15 minutes would include the whole freshly generated data set).
    args = ["run", "--select", MODELS, "--vars",
            json.dumps({"full_recompute": full, "lookback_minutes": 0})]  # fmt: skip
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


def _add_failures(db: Database, fraction: float) -> dict[str, int]:
    """Copy the newest failing executions (and their failing components), started now,
    until about ``fraction`` of the existing failures are new."""
    with db.as_system() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM component_executions WHERE status = 'failed'"
        ).fetchone()
        assert row is not None
        wanted = max(1, int(row["n"] * fraction))
        conn.execute(
            """
            CREATE TEMP TABLE new_failures ON COMMIT DROP AS
            WITH src AS (
                SELECT e.id, count(*) AS failures
                FROM workflow_executions e
                JOIN component_executions c ON c.workflow_execution_id = e.id
                WHERE e.temporal_namespace = %(ns)s AND c.status = 'failed'
                GROUP BY e.id, e.started_at
                ORDER BY e.started_at DESC
                LIMIT %(wanted)s
            ), running AS (
                SELECT id, sum(failures) OVER (ORDER BY id) AS upto FROM src
            )
            SELECT id AS src_id, gen_random_uuid() AS new_id FROM running
            WHERE upto <= %(wanted)s
            """,
            {"ns": NAMESPACE, "wanted": wanted},
        )
        conn.execute(
            """
            INSERT INTO workflow_executions (id, temporal_namespace, temporal_workflow_id,
                temporal_run_id, workflow_type, task_queue, status, started_at, closed_at,
                duration_ms, created_by, project_id, workflow_id, input, output,
                error_message, history_sync_status, history_synced_at)
            SELECT n.new_id, e.temporal_namespace, 'new-' || n.new_id, md5(n.new_id::text),
                   e.workflow_type, e.task_queue, e.status, now(), now(), e.duration_ms,
                   e.created_by, e.project_id, e.workflow_id, e.input, e.output,
                   e.error_message, 'synced', now()
            FROM new_failures n JOIN workflow_executions e ON e.id = n.src_id
            """
        )
        added = conn.execute(
            """
            INSERT INTO component_executions (workflow_execution_id, node_id, component_name,
                activity_type, scheduled_event_id, status, started_at, completed_at,
                duration_ms, error_type, error_message, temporal_activity_id)
            SELECT n.new_id, c.node_id, c.component_name, c.activity_type,
                   c.scheduled_event_id, c.status, now(), now(), c.duration_ms, c.error_type,
                   c.error_message, c.temporal_activity_id
            FROM new_failures n JOIN component_executions c ON c.workflow_execution_id = n.src_id
            WHERE c.status = 'failed'
            """
        ).rowcount
        executions = conn.execute("SELECT count(*) AS n FROM new_failures").fetchone()
        assert executions is not None
    return {"existing_failures": int(row["n"]), "new_failures": added,
            "new_executions": int(executions["n"])}  # fmt: skip


def _latencies(url: str, path: str, token: str, n: int = REQUESTS) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    out = []
    for i in range(n + 5):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if i >= 5:  # warm-up excluded
            out.append(time.perf_counter() - t0)
        assert resp.status == 200, (resp.status, body[:200])
    conn.close()
    out.sort()
    return {
        "p50_ms": round(statistics.median(out) * 1000, 1),
        "p95_ms": round(out[int(len(out) * 0.95) - 1] * 1000, 1),
        "bytes": len(body),
    }


def _bench(db: Database, endpoints: Any, executions: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    data = generate(
        db,
        executions=executions,
        components=20 * executions,
        attempts=executions,
        owner_url=endpoints.migrations_url,
    )
    f: dict[str, Any] = {
        "executions": data.executions,
        "component_rows": data.components,
        "generate_seconds": round(time.perf_counter() - t0, 1),
    }
    dbt = WfmonDbtResource(database_url=endpoints.database_url)
    try:
        f["full_build"] = _build(dbt, full=True)
        f["added"] = _add_failures(db, 0.01)
        f["incremental_build"] = _build(dbt, full=False)
    finally:
        dbt.teardown_after_execution(dg.build_init_resource_context())
    f["ratio_models_incremental_vs_full"] = round(
        f["incremental_build"]["models_seconds"] / f["full_build"]["models_seconds"], 4
    )
    f["ratio_wall_incremental_vs_full"] = round(
        f["incremental_build"]["wall_seconds"] / f["full_build"]["wall_seconds"], 4
    )
    with db.as_system() as conn:
        groups = conn.execute(
            "SELECT count(*) AS n, sum(failures) AS failures FROM failure_groups"
        ).fetchone()
        assert groups is not None
    f["groups"] = int(groups["n"])
    f["grouped_failures"] = int(groups["failures"])
    user = data.users[0]
    token = dev_token(str(user.auth_user_id), SECRET)
    server = AppProcess(endpoints.web_database_url, endpoints.temporal_address)
    try:
        base = f"/projects/{user.project_id}"
        f["baseline_project_page"] = _latencies(server.url, base, token)
        f["failures_page"] = _latencies(server.url, f"{base}/failures?sort=biggest", token)
        f["failures_page_newest"] = _latencies(server.url, f"{base}/failures", token)
        f["failures_api"] = _latencies(server.url, f"/api{base}/failure-groups", token)
    finally:
        server.stop()
    f["ratio_page_p95_vs_project_page"] = round(
        f["failures_page"]["p95_ms"] / f["baseline_project_page"]["p95_ms"], 2
    )
    f["meets_targets"] = (
        f["failures_page"]["p95_ms"] <= 100 and f["ratio_models_incremental_vs_full"] <= 0.10
    )
    return f


def main() -> None:
    executions = int(os.environ.get("WFMON_BENCH_FAILURES_EXECUTIONS", "50000"))
    state = make_state_dir("wfmon-bench-failures-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        with Database(endpoints.database_url, max_size=4) as db:
            f = _bench(db, endpoints, executions)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    write_result(
        "failure_groups",
        f,
        f"{f['executions']:,} exec / {f['component_rows']:,} rows, {f['groups']:,} groups: "
        f"page p95 {f['failures_page']['p95_ms']:.0f} ms (project page "
        f"{f['baseline_project_page']['p95_ms']:.0f} ms); rebuild after 1% new failures "
        f"{f['incremental_build']['models_seconds']:.2f}s vs full "
        f"{f['full_build']['models_seconds']:.2f}s (ratio "
        f"{f['ratio_models_incremental_vs_full']:.3f}; wall "
        f"{f['incremental_build']['wall_seconds']:.1f}s vs {f['full_build']['wall_seconds']:.1f}s)",
    )


if __name__ == "__main__":
    main()
