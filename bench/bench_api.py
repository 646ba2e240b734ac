"""Web app under load: the HTTP API with 20 concurrent clients vs the raw SQL of the same
reads, and the cached details read vs Temporal, each against its baseline in the same run.

Measured in one run on embedded services, ``wfmon serve`` in its own processes (its
default process model, docs/architecture/web-app.md):

- execution details (one execution with 100 components, every 10th retried once):
  ``GET /api/executions/{id}`` (the page of components with attempts explained and the
  timeline) vs every statement the endpoint runs (execution row, component counts,
  component page, attempts, workflow name) run by 20 threads straight on a pool, in one
  unit of work as the same user (same rows, same RLS, the JSON columns decoded the same);
- a history page (``GET /api/workflows/{id}/executions``, 20 of 300 executions, with
  component counts) vs its statements (the workflow, ``page_executions`` with its count,
  the component counts, the re-run marks).
  Targets: throughput >= 0.5x the SQL's, p99 <= 3x p50. Each pair first runs one
  unmeasured warm-up round per side (pools grown, statements prepared, workers warm),
  then ``WFMON_BENCH_API_ROUNDS`` rounds, API then SQL; the ratio reported is the median
  round's. Every round also records CPU per request from ``/proc``: the web app's
  processes, PostgreSQL's and this process's (the clients; for the baseline, the SQL
  readers themselves), since on 2 cores they all compete for the same cores;
- the cached read of a real 100-activity execution synced from Temporal, sporadic
  requests (5 ms apart): the endpoint and ``ExecutionService.get_execution_details``
  (what bench_sync measures) vs ``fetch_history`` + ``read_history`` of the same run.
  Target: >= 10x at p99 too;
- page render time in Chromium for an execution with 5,000 component rows (navigation
  start to the load event), when Playwright and ``/usr/bin/chromium`` are there.

The load average is recorded with every figure: the ratios are what to compare across
machines. Knobs: ``WFMON_BENCH_API_CLIENTS`` (20), ``WFMON_BENCH_API_REQUESTS`` per client
(50), ``WFMON_BENCH_API_ROUNDS`` (3), ``WFMON_BENCH_API_WORKERS`` (``wfmon serve
--workers``; default: serve's own default).
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from temporalio.client import Client

from bench.common import latency_figures, percentile, tree_cpu_seconds, write_result
from tests.conftest import make_state_dir
from wfmon.api.tokens import signin_url
from wfmon.db import Database
from wfmon.db import details as d
from wfmon.db.executions import page_executions
from wfmon.db.projects import get_workflow, get_workflow_name
from wfmon.db.reruns import rerun_marks
from wfmon.dev.services import STATE_FILE, EmbeddedServices
from wfmon.history import read_history
from wfmon.migrate import apply_migrations
from wfmon.model import WorkflowDefinition
from wfmon.runtime import start_builder_run
from wfmon.runtime.worker import build_worker
from wfmon.sync.batch import sync_many
from wfmon.sync.messages import ExecutionRef
from wfmon.sync.service import ExecutionService
from wfmon.sync.worker import build_sync_worker
from wfmon.testing import WorkflowOwner, make_owner, seed_execution

SECRET = "bench-secret"
#: Requests per client of the unmeasured warm-up round before each endpoint's rounds.
WARM_REQUESTS = 10
CHROMIUM = Path(os.environ.get("WFMON_CHROMIUM", "/usr/bin/chromium"))


def concurrently(
    clients: int,
    requests: int,
    make: Callable[[], Callable[[], None]],
    cpu: CpuMeter | None = None,
) -> dict[str, Any]:
    """Run ``requests`` calls in each of ``clients`` threads; latency figures in ms, and
    the CPU per request of each process ``cpu`` names."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def worker() -> None:
        call = make()
        call()  # warm the connection
        start.wait()
        mine = []
        for _ in range(requests):
            t0 = time.perf_counter()
            call()
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    before = cpu.sample() if cpu else {}
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    after = cpu.sample() if cpu else {}
    p50, p99 = statistics.median(latencies), percentile(latencies, 99)
    per_request = {k: round((after[k] - before[k]) * 1000 / len(latencies), 2) for k in before}
    return {
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "p99_to_p50": round(p99 / p50, 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "per_s": round(len(latencies) / wall, 1),
        "requests": len(latencies),
        "cpu_ms_per_request": per_request,
        "load_average": load_average(),
    }


@dataclass(frozen=True)
class CpuMeter:
    """CPU of the processes a measured round uses, from ``/proc``: the web app (all its
    processes), PostgreSQL (all its backends) and this benchmark process (the clients:
    HTTP clients for the API, the raw-SQL readers for the baseline). On 2 cores they
    compete, so each side's figure says what its requests cost everyone."""

    server: int
    postgres: int

    def sample(self) -> dict[str, float]:
        return {
            "server": tree_cpu_seconds(self.server),
            "postgres": tree_cpu_seconds(self.postgres),
            "client": time.process_time(),
        }


def load_average() -> float:
    """The 1-minute load average (this machine is shared: every figure says how busy)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def http_call(base: str, path: str, token: str) -> Callable[[], Callable[[], None]]:
    host, port = base.removeprefix("http://").split(":")

    def make() -> Callable[[], None]:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {token}"}

        def call() -> None:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: HTTP {resp.status}")

        return call

    return make


def sql_details(db: Database, auth: UUID, execution_id: UUID) -> Callable[[], Callable[[], None]]:
    """Every statement ``GET /api/executions/{id}`` runs for a settled execution, in one
    unit of work as the same user (the same rows under the same RLS): the execution, its
    counts, the page of components, their attempts, the workflow's name. (The seeded run's
    input carries no definition, so the endpoint reads no not-run nodes either.)"""

    def make() -> Callable[[], None]:
        def call() -> None:
            with db.as_user(auth) as conn:
                row = d.get_execution(conn, execution_id)
                assert row is not None
                d.count_components_by_status(conn, execution_id)
                rows = d.page_component_executions(conn, execution_id, offset=0, limit=100)
                ids = [r["temporal_activity_id"] or r["node_id"] for r in rows]
                d.list_activity_attempts(conn, row, ids)
                get_workflow_name(conn, row["workflow_id"])

        return call

    return make


def sql_history(db: Database, auth: UUID, workflow_id: UUID) -> Callable[[], Callable[[], None]]:
    """Every statement ``GET /api/workflows/{id}/executions`` runs: the workflow (its
    404 check), the page with its total, the component counts and re-run marks of the
    page."""

    def make() -> Callable[[], None]:
        def call() -> None:
            with db.as_user(auth) as conn:
                assert get_workflow(conn, workflow_id) is not None
                page = page_executions(conn, workflow_id, page=1, page_size=20)
                listed = [e.id for e in page.items]
                d.count_components_by_execution(conn, listed)
                rerun_marks(conn, listed)

        return call

    return make


def chromium_render(base: str, token: str, execution_id: UUID, repeat: int = 5) -> dict[str, Any]:
    if importlib.util.find_spec("playwright") is None or not CHROMIUM.exists():
        return {"skipped": "playwright or chromium not installed"}
    from playwright.sync_api import sync_playwright

    loads: list[float] = []
    responses: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 850})
        page.goto(signin_url(base, token))
        page.wait_for_url("**/projects")
        for _ in range(repeat):
            page.goto(f"{base}/executions/{execution_id}", wait_until="load")
            t = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return [n.loadEventEnd - n.startTime, n.responseEnd - n.requestStart]; }"
            )
            loads.append(t[0])
            responses.append(t[1])
        cards = page.locator("article.card").count()
        browser.close()
    return {
        "components": 5000,
        "cards_rendered_per_page": cards,
        "load_p50_ms": round(statistics.median(loads), 1),
        "load_max_ms": round(max(loads), 1),
        "server_response_p50_ms": round(statistics.median(responses), 1),
    }


def _times(call: Callable[[], None], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


class AppProcess:
    """``wfmon serve`` in its own processes (its default process model unless ``workers``),
    as in production; the benchmark's client threads do not share its interpreters."""

    def __init__(
        self, database_url: str, temporal_address: str, workers: int | None = None
    ) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            # The web app's own login (it may only become wfmon_user), as `make demo` runs it.
            "WFMON_WEB_DATABASE_URL": database_url,
            "WFMON_TEMPORAL_ADDRESS": temporal_address,
            "WFMON_JWT_SECRET": SECRET,
        }
        self.url = f"http://127.0.0.1:{port}"
        more = ["--workers", str(workers)] if workers else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wfmon.cli", "serve", "--port", str(port), *more],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("wfmon serve did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _ratios(api: list[dict[str, Any]], sql: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput ratio API/SQL of each round (API then SQL, same machine state); the
    median round's figures are the result."""
    per_round = [round(a["per_s"] / q["per_s"], 3) for a, q in zip(api, sql, strict=True)]
    mid = sorted(range(len(per_round)), key=per_round.__getitem__)[len(per_round) // 2]
    cpu = [
        round(sum(q["cpu_ms_per_request"].values()) / sum(a["cpu_ms_per_request"].values()), 3)
        for a, q in zip(api, sql, strict=True)
    ]
    return {
        "throughput_ratio": per_round[mid],
        "throughput_ratio_rounds": per_round,
        # CPU of every process per raw-SQL read / per API request: what the throughput
        # ratio tends to when both sides are CPU-bound on the same cores.
        "cpu_ratio_rounds": cpu,
        "api": api[mid],
        "sql": sql[mid],
        "api_rounds": api,
        "sql_rounds": sql,
    }


def _under_load(
    server: AppProcess,
    db: Database,
    alice: WorkflowOwner,
    details_id: UUID,
    rounds: int,
    cpu: CpuMeter,
) -> dict[str, Any]:
    clients = int(os.environ.get("WFMON_BENCH_API_CLIENTS", "20"))
    requests = int(os.environ.get("WFMON_BENCH_API_REQUESTS", "50"))
    token = alice.dev_token(SECRET)
    auth, wf = alice.auth_user_id, alice.workflow.id
    pairs = {
        "details": (
            http_call(server.url, f"/api/executions/{details_id}", token),
            sql_details(db, auth, details_id),
        ),
        "history": (
            http_call(server.url, f"/api/workflows/{wf}/executions?page_size=20", token),
            sql_history(db, auth, wf),
        ),
    }
    f: dict[str, Any] = {"clients": clients, "requests_per_client": requests, "rounds": rounds}
    for name, (api_call, sql_call) in pairs.items():
        # One unmeasured round each first: both pools grow to 20 connections, the new
        # backends fill their caches and psycopg prepares the statements, the web
        # workers' first requests run; measured rounds are then steady state on both sides.
        concurrently(clients, WARM_REQUESTS, api_call)
        concurrently(clients, WARM_REQUESTS, sql_call)
        api, sql = [], []
        for _ in range(rounds):
            api.append(concurrently(clients, requests, api_call, cpu))
            sql.append(concurrently(clients, requests, sql_call, cpu))
        f[name] = _ratios(api, sql)
    return f


def _definition(nodes: int) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "id": "bench-api-100",
            "name": "bench-api-100",
            "version": 1,
            "nodes": [
                {"id": f"n{i}", "component": "transform", "config": {"set": {"i": i}}}
                for i in range(nodes)
            ],
            "edges": [],
        }
    )


async def _cached_vs_temporal(
    server: AppProcess, db: Database, temporal_address: str, repeat: int = 200
) -> dict[str, Any]:
    """A real 100-activity run, synced; its cached read (the endpoint, and the service
    read bench_sync measures) vs fetching + reading its history from Temporal."""
    client = await Client.connect(temporal_address)
    owner = make_owner(db, "bench-temporal", workflow_name="bench temporal")
    queue = f"bench-api-{uuid.uuid4().hex[:6]}"
    async with build_worker(client, task_queue=queue), build_sync_worker(client, db):
        handle = await start_builder_run(
            client, _definition(100), None, context=owner.run_context(), task_queue=queue
        )
        await handle.result()
        ref = ExecutionRef(client.namespace, handle.id, handle.result_run_id or "")
        report = await sync_many(client, [ref])
        assert not report.failed, report.failed
    with db.as_user(owner.auth_user_id) as conn:
        row = d.find_execution(conn, ref.namespace, ref.workflow_id, ref.run_id)
    assert row is not None and row["history_sync_status"] == "synced"
    service = ExecutionService(db, client)
    endpoint = http_call(server.url, f"/api/executions/{row['id']}", owner.dev_token(SECRET))()

    async def service_read() -> None:
        details = await service.get_execution_details(row["id"], owner.auth_user_id)
        assert len(details.components) == 100 and not details.synced_now

    async def endpoint_read() -> None:
        await asyncio.to_thread(endpoint)

    async def fetch_and_read() -> None:
        h = client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id)
        assert len(read_history(await h.fetch_history()).components) == 100

    async def sporadic(call: Callable[[], Awaitable[None]]) -> list[float]:
        for _ in range(20):  # warm: pooled connections, prepared statements, caches
            await call()
        out = []
        for _ in range(repeat):
            await asyncio.sleep(0.005)
            t0 = time.perf_counter()
            await call()
            out.append((time.perf_counter() - t0) * 1000)
        return out

    f: dict[str, Any] = {"load_average_before": load_average()}
    direct = await sporadic(fetch_and_read)
    for name, call in (("service", service_read), ("endpoint", endpoint_read)):
        cached = await sporadic(call)
        f[name] = {
            "cached": latency_figures(cached, 99),
            "cache_speedup_p50": round(statistics.median(direct) / statistics.median(cached), 1),
            "cache_speedup_p99": round(percentile(direct, 99) / percentile(cached, 99), 1),
        }
    f["fetch_and_read"] = latency_figures(direct, 99)
    f["load_average_after"] = load_average()
    return f


def _bench(
    db: Database, database_url: str, temporal_address: str, postgres_pid: int
) -> dict[str, Any]:
    rounds = int(os.environ.get("WFMON_BENCH_API_ROUNDS", "3"))
    workers = os.environ.get("WFMON_BENCH_API_WORKERS")
    alice = make_owner(db, "bench", display_name="bench", workflow_name="bench orders")
    details_id = seed_execution(db, alice, components=100)
    for _ in range(300):
        seed_execution(db, alice, components=3, retried_every=0)
    # The 5,000-component run belongs to another workflow, so the history page measured
    # is a typical one; its own cost is measured separately below.
    other = make_owner(db, "bench-big", display_name="bench-big", workflow_name="bench-big orders")
    big = seed_execution(db, other, components=5000)
    server = AppProcess(database_url, temporal_address, int(workers) if workers else None)
    try:
        f = _under_load(
            server, db, alice, details_id, rounds, CpuMeter(server.proc.pid, postgres_pid)
        )
        f["serve_workers"] = workers or "default (one per core)"
        f["cached_vs_temporal"] = asyncio.run(_cached_vs_temporal(server, db, temporal_address))
        single = sql_history(db, other.auth_user_id, other.workflow.id)()
        f["history_sql_page_with_a_5000_component_run_ms"] = round(
            statistics.median(_times(single, 20)), 2
        )
        f["render_5000"] = chromium_render(server.url, other.dev_token(SECRET), big)
    finally:
        server.stop()
    return f


def main() -> None:
    state = make_state_dir("wfmon-bench-api-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        postgres_pid = int(json.loads((state / STATE_FILE).read_text())["postgres"]["pid"])
        with Database(endpoints.database_url, max_size=24) as db:
            f = _bench(db, endpoints.web_database_url, endpoints.temporal_address, postgres_pid)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    r = f["render_5000"]
    render = (
        f"5,000-row page load p50 {r['load_p50_ms']:.0f} ms in Chromium"
        if "load_p50_ms" in r
        else f"render: {r.get('skipped')}"
    )
    parts = []
    for name in ("details", "history"):
        x = f[name]
        api_cpu, sql_cpu = (sum(x[k]["cpu_ms_per_request"].values()) for k in ("api", "sql"))
        parts.append(
            f"{name} {x['api']['per_s']:.0f}/s vs SQL {x['sql']['per_s']:.0f}/s "
            f"(ratio {x['throughput_ratio']:.2f}, target >= 0.5), p50/p99 "
            f"{x['api']['p50_ms']:.0f}/{x['api']['p99_ms']:.0f} ms "
            f"(p99/p50 {x['api']['p99_to_p50']:.1f}, target <= 3), CPU per request "
            f"{api_cpu:.1f} vs {sql_cpu:.1f} ms, load {x['api']['load_average']}"
        )
    c = f["cached_vs_temporal"]
    parts.append(
        f"cached read vs Temporal p99 {c['endpoint']['cache_speedup_p99']:.1f}x (endpoint), "
        f"{c['service']['cache_speedup_p99']:.1f}x (service), target >= 10x; "
        f"load {c['load_average_after']}"
    )
    write_result("api", f, f"{f['clients']} clients: " + "; ".join(parts) + f"; {render}")


if __name__ == "__main__":
    main()
