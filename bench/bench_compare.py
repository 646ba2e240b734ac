"""Compare two runs: ``GET /api/executions/{id}/compare`` on two 5,000-node executions vs
reading the same two executions' component rows with plain SQL, in the same run.

Both executions are written with the sync's own writers (tests/api/seed.py): 5,000
components each, every node's input differing in one path (the worst case for the diff:
no payload is equal, so every one is parsed and walked), outputs equal. The app runs as
``wfmon serve`` in its own process (as bench/bench_api.py does); one client, sequential
requests; the page (which renders the first 500 changed nodes) is timed too. The
baseline is :func:`wfmon.db.details.list_component_executions` for both executions (every
column, JSON decoded) under the same user's row-level security: what any comparison has
to read at least. Target: the comparison in at most 500 ms (p50).

Knob: ``WFMON_BENCH_COMPARE_REPEAT`` (15) requests per figure.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from bench.bench_api import SECRET, AppProcess
from bench.common import latency_figures, timed_ms, write_result
from tests.api.seed import make_person, seed_execution
from tests.conftest import make_state_dir
from wfmon.db import Database
from wfmon.db import details as d
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations

NODES = 5000
TARGET_MS = 500.0


def _bench(db: Database, database_url: str, temporal_address: str) -> dict[str, Any]:
    repeat = int(os.environ.get("WFMON_BENCH_COMPARE_REPEAT", "15"))
    person = make_person(db, "bench-compare", SECRET)
    t0 = time.perf_counter()
    base = seed_execution(db, person, components=NODES, payload={"n": 1, "text": "a" * 200})
    current = seed_execution(db, person, components=NODES, payload={"n": 2, "text": "a" * 200})
    seed_s = time.perf_counter() - t0
    server = AppProcess(database_url, temporal_address)
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Authorization": f"Bearer {person.token}"}
    sizes: dict[str, int] = {}

    def api(path: str) -> Callable[[], None]:
        def call() -> None:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: HTTP {resp.status}: {body[:200]!r}")
            sizes[path] = len(body)

        return call

    def sql_rows() -> None:
        with db.as_user(person.auth_user_id) as c:
            for execution in (base, current):
                rows = d.list_component_executions(c, execution)
                assert len(rows) == NODES

    try:
        full = f"/api/executions/{current}/compare?with={base}"
        changed = f"{full}&changed_only=true"
        default = f"/api/executions/{current}/compare"
        check = json.loads(_fetch(conn, full, headers))
        assert check["summary"]["nodes"] == NODES and check["summary"]["changed"] == NODES
        f: dict[str, Any] = {
            "nodes_per_run": NODES,
            "repeat": repeat,
            "seed_two_runs_s": round(seed_s, 2),
            "compare_api": latency_figures(timed_ms(api(full), repeat), 90),
            "compare_api_changed_only": latency_figures(timed_ms(api(changed), repeat), 90),
            "compare_api_default_partner": latency_figures(timed_ms(api(default), repeat), 90),
            "compare_page_first_500_changed_nodes": latency_figures(
                timed_ms(api(f"/executions/{current}/compare?with={base}"), repeat), 90
            ),
            "baseline_sql_rows_both_runs": latency_figures(timed_ms(sql_rows, repeat), 90),
        }
        f["response_bytes"] = sizes[full]
    finally:
        conn.close()
        server.stop()
    f["ratio_compare_to_sql_p50"] = round(
        f["compare_api"]["p50_ms"] / f["baseline_sql_rows_both_runs"]["p50_ms"], 2
    )
    f["target_ms"] = TARGET_MS
    f["meets_target"] = f["compare_api"]["p50_ms"] <= TARGET_MS
    return f


def _fetch(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> bytes:
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{path}: HTTP {resp.status}: {body[:200]!r}")
    return body


def main() -> None:
    state = make_state_dir("wfmon-bench-compare-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        with Database(endpoints.database_url, max_size=4) as db:
            f = _bench(db, endpoints.web_database_url, endpoints.temporal_address)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    c, s = f["compare_api"], f["baseline_sql_rows_both_runs"]
    write_result(
        "compare",
        f,
        f"two {NODES:,}-node runs: compare p50/p90 {c['p50_ms']:.0f}/{c['p90_ms']:.0f} ms "
        f"(target {TARGET_MS:.0f} ms: {'met' if f['meets_target'] else 'MISSED'}) vs plain SQL "
        f"rows {s['p50_ms']:.0f} ms = {f['ratio_compare_to_sql_p50']:.2f}x; changed-only "
        f"{f['compare_api_changed_only']['p50_ms']:.0f} ms, page "
        f"{f['compare_page_first_500_changed_nodes']['p50_ms']:.0f} ms",
    )


if __name__ == "__main__":
    main()
