"""Web app latency: the HTTP API under 20 concurrent clients vs the raw SQL of the same reads.

Measured in one run on embedded services:

- execution details (one execution with 100 components, every 10th retried once):
  ``GET /api/executions/{id}`` (cache-aside status check + the page of components with
  attempts explained) vs the same SQL (execution row, component page, attempts) run by
  20 threads straight on the pool;
- a history page (``GET /api/workflows/{id}/executions``, 20 of 300 executions, with
  component counts) vs ``page_executions`` + the count query;
- page render time in Chromium for an execution with 5,000 component rows (navigation
  start to the load event), when Playwright and ``/usr/bin/chromium`` are there.

The app runs as ``wfmon serve`` in its own process. Knobs: ``WFMON_BENCH_API_CLIENTS``
(20), ``WFMON_BENCH_API_REQUESTS`` per client (50).
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.common import percentile, write_result
from tests.conftest import make_state_dir
from wfmon.api.tokens import signin_url
from wfmon.db import Database
from wfmon.db import details as d
from wfmon.db.executions import page_executions
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations
from wfmon.testing import make_owner, seed_execution

SECRET = "bench-secret"
CHROMIUM = Path(os.environ.get("WFMON_CHROMIUM", "/usr/bin/chromium"))


def concurrently(
    clients: int, requests: int, make: Callable[[], Callable[[], None]]
) -> dict[str, float]:
    """Run ``requests`` calls in each of ``clients`` threads; latency figures in ms."""
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
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "per_s": round(len(latencies) / wall, 1),
        "requests": len(latencies),
    }


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
    def make() -> Callable[[], None]:
        def call() -> None:
            with db.as_user(auth) as conn:
                row = d.get_execution(conn, execution_id)
                assert row is not None
                d.count_components_by_status(conn, execution_id)
                rows = d.page_component_executions(conn, execution_id, offset=0, limit=100)
                d.list_activity_attempts(conn, row, [r["node_id"] for r in rows])

        return call

    return make


def sql_history(db: Database, auth: UUID, workflow_id: UUID) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        def call() -> None:
            with db.as_user(auth) as conn:
                page = page_executions(conn, workflow_id, page=1, page_size=20)
                d.count_components_by_execution(conn, [e.id for e in page.items])

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
    """``wfmon serve`` in its own process (its own GIL, its own pool of 20 connections),
    as in production; the benchmark's client threads do not compete with it."""

    def __init__(self, database_url: str, temporal_address: str) -> None:
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
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wfmon.cli", "serve", "--port", str(port)],
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


def _bench(db: Database, database_url: str, temporal_address: str) -> dict[str, Any]:
    clients = int(os.environ.get("WFMON_BENCH_API_CLIENTS", "20"))
    requests = int(os.environ.get("WFMON_BENCH_API_REQUESTS", "50"))
    alice = make_owner(db, "bench", display_name="bench", workflow_name="bench orders")
    details_id = seed_execution(db, alice, components=100)
    for _ in range(300):
        seed_execution(db, alice, components=3, retried_every=0)
    # The 5,000-component run belongs to another workflow, so the history page measured
    # is a typical one; its own cost is measured separately below.
    other = make_owner(db, "bench-big", display_name="bench-big", workflow_name="bench-big orders")
    big = seed_execution(db, other, components=5000)
    server = AppProcess(database_url, temporal_address)
    try:
        auth = alice.auth_user_id
        wf = alice.workflow.id
        f: dict[str, Any] = {"clients": clients, "requests_per_client": requests}
        f["details_api"] = concurrently(
            clients,
            requests,
            http_call(server.url, f"/api/executions/{details_id}", alice.dev_token(SECRET)),
        )
        f["details_sql"] = concurrently(clients, requests, sql_details(db, auth, details_id))
        f["history_api"] = concurrently(
            clients,
            requests,
            http_call(
                server.url, f"/api/workflows/{wf}/executions?page_size=20", alice.dev_token(SECRET)
            ),
        )
        f["history_sql"] = concurrently(clients, requests, sql_history(db, auth, wf))
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
        with Database(endpoints.database_url, max_size=24) as db:
            f = _bench(db, endpoints.web_database_url, endpoints.temporal_address)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    r = f["render_5000"]
    render = (
        f"5,000-row page load p50 {r['load_p50_ms']:.0f} ms in Chromium"
        if "load_p50_ms" in r
        else f"render: {r.get('skipped')}"
    )
    write_result(
        "api",
        f,
        f"{f['clients']} clients: details p50/p99 {f['details_api']['p50_ms']:.1f}/"
        f"{f['details_api']['p99_ms']:.1f} ms vs SQL {f['details_sql']['p50_ms']:.1f}/"
        f"{f['details_sql']['p99_ms']:.1f} ms; history p50/p99 {f['history_api']['p50_ms']:.1f}/"
        f"{f['history_api']['p99_ms']:.1f} ms vs SQL {f['history_sql']['p50_ms']:.1f}/"
        f"{f['history_sql']['p99_ms']:.1f} ms; {render}",
    )


if __name__ == "__main__":
    main()
