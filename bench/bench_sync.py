"""Sync throughput and the cache-aside read, each against its baseline in the same run.

1. End-to-end sync of N executions (20 activities each) through the coordinator, versus
   the raw rate of ``fetch_history`` of the same executions from the same server at the
   same concurrency. Target ratio >= 0.7.
2. ``get_execution_details`` of a synced 100-component execution (database read under
   RLS), p50/p99, versus fetching + reading the same history from Temporal. Target >= 10x.
   Each is measured on its own as sporadic requests (10 ms apart), after warming every
   pooled connection; the alternating figure (a cached read right after each fetch) is
   kept too, as the worst case for the cached read.

The same executions are then synced again with a second sync worker process
(``wfmon worker --sync-only``) polling next to the first: how sync scales out when one
Python process is the limit.

``WFMON_BENCH_SYNC_EXECUTIONS`` sets N (default 1000).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from temporalio.client import Client

from bench.common import write_result
from tests.conftest import make_state_dir
from wfmon.db import Database
from wfmon.dev.process import stop_pid
from wfmon.dev.services import EmbeddedServices, Endpoints
from wfmon.history import read_history
from wfmon.migrate import apply_migrations
from wfmon.model import WorkflowDefinition
from wfmon.runtime import start_builder_run
from wfmon.runtime.worker import build_worker
from wfmon.sync.batch import sync_many
from wfmon.sync.messages import ExecutionRef
from wfmon.sync.service import ExecutionService
from wfmon.sync.worker import build_sync_worker
from wfmon.testing import make_owner

CONCURRENCY = 16


def _definition(name: str, nodes: int) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "id": name,
            "name": name,
            "version": 1,
            "nodes": [
                {"id": f"n{i}", "component": "transform", "config": {"set": {"i": i}}}
                for i in range(nodes)
            ],
            "edges": [],
        }
    )


async def _timed(call: Callable[[], Awaitable[None]], gap_s: float = 0.0) -> float:
    """Seconds ``call`` took; waits ``gap_s`` first (not counted)."""
    if gap_s:
        await asyncio.sleep(gap_s)
    t0 = time.perf_counter()
    await call()
    return time.perf_counter() - t0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start_sync_only_worker(endpoints: Endpoints, state: Path) -> subprocess.Popen[bytes]:
    """``wfmon worker --sync-only`` as a child process, returned once it polls."""
    env = {
        **os.environ,
        "WFMON_DATABASE_URL": endpoints.database_url,
        "WFMON_TEMPORAL_ADDRESS": endpoints.temporal_address,
        "WFMON_REDIS_URL": endpoints.redis_url,
        "WFMON_STATE_DIR": str(state),
    }
    log = state / "sync-only-worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "wfmon"), "worker", "--sync-only"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while "Ctrl-C to stop" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_pid(proc.pid, signal.SIGKILL)
            raise RuntimeError(f"sync-only worker did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc


async def _bench(
    client: Client, db: Database, executions: int, endpoints: Endpoints, state: Path
) -> dict[str, Any]:
    owner = make_owner(db, "bench")
    auth = owner.user.auth_user_id
    assert auth is not None
    ctx = owner.run_context()
    queue = f"bench-builder-{uuid.uuid4().hex[:6]}"

    async with build_worker(client, task_queue=queue), build_sync_worker(client, db):
        gate = asyncio.Semaphore(64)

        async def run_one(defn: WorkflowDefinition) -> ExecutionRef:
            async with gate:
                h = await start_builder_run(client, defn, None, context=ctx, task_queue=queue)
                await h.result()
                return ExecutionRef(client.namespace, h.id, h.result_run_id or "")

        t0 = time.perf_counter()
        small = _definition("bench-20", 20)
        refs = list(await asyncio.gather(*(run_one(small) for _ in range(executions))))
        generate_s = time.perf_counter() - t0

        # Baseline: fetch every history, same concurrency.
        fetch_gate = asyncio.Semaphore(CONCURRENCY)

        async def fetch(ref: ExecutionRef) -> int:
            async with fetch_gate:
                h = client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id)
                return len((await h.fetch_history()).events)

        t0 = time.perf_counter()
        events = sum(await asyncio.gather(*(fetch(r) for r in refs)))
        fetch_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        report = await sync_many(client, refs, concurrency=CONCURRENCY)
        sync_s = time.perf_counter() - t0
        assert not report.failed, report.failed[:3]

        second = await asyncio.to_thread(_start_sync_only_worker, endpoints, state)
        try:
            t0 = time.perf_counter()
            report = await sync_many(client, refs, concurrency=CONCURRENCY)
            sync_two_s = time.perf_counter() - t0
        finally:
            stop_pid(second.pid, signal.SIGTERM)
            second.wait()
        assert not report.failed, report.failed[:3]

        # Cache read of a 100-component execution.
        big = await run_one(_definition("bench-100", 100))
        await sync_many(client, [big])
        with db.as_user(auth) as conn:
            row = conn.execute(
                "SELECT id FROM workflow_executions WHERE temporal_run_id = %s", (big.run_id,)
            ).fetchone()
        assert row is not None

    figures = {
        "executions": executions,
        "activities_per_execution": 20,
        "events": events,
        "generate_s": generate_s,
        "raw_fetch_history_per_s": executions / fetch_s,
        "sync_per_s": executions / sync_s,
        "sync_to_fetch_ratio": fetch_s / sync_s,
        "sync_two_processes_per_s": executions / sync_two_s,
        "sync_two_processes_to_fetch_ratio": fetch_s / sync_two_s,
    }

    # Read path as the web app sees it: its own pool (``wfmon serve`` sizing), no workers,
    # in steady state (every pooled connection has run, and so prepared, the statements).
    with Database(endpoints.database_url) as web_db:
        service = ExecutionService(web_db, client)
        return {**figures, **await _read_path(service, client, row["id"], auth, big)}


async def _read_path(
    service: ExecutionService, client: Client, execution_id: UUID, auth: UUID, big: ExecutionRef
) -> dict[str, Any]:
    """The cached read and its baseline, fetching + reading the history from Temporal."""
    for _ in range(200):
        await service.get_execution_details(execution_id, auth)

    async def cached_read() -> None:
        details = await service.get_execution_details(execution_id, auth)
        assert len(details.components) == 100 and not details.synced_now

    async def fetch_and_read() -> None:
        handle = client.get_workflow_handle(big.workflow_id, run_id=big.run_id)
        assert len(read_history(await handle.fetch_history()).components) == 100

    # Each path on its own, as sporadic requests (10 ms apart) see it; then alternating,
    # where each cached read follows a fetch (and pays for the CPU and caches it left busy).
    cached = [await _timed(cached_read, gap_s=0.01) for _ in range(200)]
    direct = [await _timed(fetch_and_read, gap_s=0.01) for _ in range(200)]
    cached_alt, direct_alt = [], []
    for _ in range(200):
        cached_alt.append(await _timed(cached_read))
        direct_alt.append(await _timed(fetch_and_read))

    return {
        "details_cached_p50_ms": statistics.median(cached) * 1000,
        "details_cached_p99_ms": _percentile(cached, 0.99) * 1000,
        "fetch_and_read_p50_ms": statistics.median(direct) * 1000,
        "fetch_and_read_p99_ms": _percentile(direct, 0.99) * 1000,
        "cache_speedup_p50": statistics.median(direct) / statistics.median(cached),
        "cache_speedup_p99": _percentile(direct, 0.99) / _percentile(cached, 0.99),
        "alternating_cached_p50_ms": statistics.median(cached_alt) * 1000,
        "alternating_fetch_and_read_p50_ms": statistics.median(direct_alt) * 1000,
        "alternating_cache_speedup_p50": statistics.median(direct_alt)
        / statistics.median(cached_alt),
    }


def main() -> None:
    executions = int(os.environ.get("WFMON_BENCH_SYNC_EXECUTIONS", "1000"))
    state = make_state_dir("wfmon-bench-sync-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)

        async def go() -> dict[str, Any]:
            client = await Client.connect(endpoints.temporal_address)
            with Database(endpoints.database_url, max_size=20) as db:
                return await _bench(client, db, executions, endpoints, state)

        f = asyncio.run(go())
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    write_result(
        "sync",
        f,
        f"{f['sync_per_s']:.0f} exec/s synced vs {f['raw_fetch_history_per_s']:.0f}/s raw fetch "
        f"(ratio {f['sync_to_fetch_ratio']:.2f}, target >= 0.7; two sync processes "
        f"{f['sync_two_processes_per_s']:.0f}/s, {f['sync_two_processes_to_fetch_ratio']:.2f}); "
        "details p50 "
        f"{f['details_cached_p50_ms']:.1f} ms vs {f['fetch_and_read_p50_ms']:.1f} ms "
        f"({f['cache_speedup_p50']:.1f}x, p99 {f['cache_speedup_p99']:.1f}x, target >= 10x; "
        f"alternating {f['alternating_cache_speedup_p50']:.1f}x)",
    )


if __name__ == "__main__":
    main()
