"""Sync cost against its floor, throughput against the raw fetch, and the cache-aside read.

1. CPU per synced execution (20 activities each), read from ``/proc`` for every process
   involved: the sync worker process(es) (``wfmon worker --sync-only``), Temporal, every
   PostgreSQL process (live backends + the postmaster's reaped children) and this driver
   (which calls the coordinator, as ``wfmon sync`` does). Against the floor, measured in
   the same run on the same executions: ``fetch_history`` of them (Temporal + Python),
   ``read_history`` of the fetched histories, and the rows the sync wrote (execution and
   component rows) written again by one plain transaction with COPY into tables of the
   same shape. The fetch and the read are measured before the sync phases and again after
   them, and the floor takes the mean (the machine's speed drifts within minutes). Target:
   sync CPU <= 1.5x the floor. A second floor adds the search rows
   the sync's triggers write (documents and path terms, copied the same way): both ratios
   are reported, the target is the first one's. Autovacuum is off for the sync's tables:
   each phase is followed by a VACUUM (ANALYZE) of them, reported on its own
   (``upkeep_after_postgres_cpu_ms_per_execution``), so no phase pays for another's.
2. Throughput: end-to-end sync through the coordinator versus the raw rate of
   ``fetch_history`` of the same executions at the same concurrency. Target >= 0.35 on
   this machine. A re-sync with one and then two sync processes: a second process must
   not lower throughput. Every measured phase starts with warm workers, and the idle CPU
   of each process is measured so the figures beyond idle can be shown too.
3. ``get_execution_details`` of a synced 100-component execution (database read under
   RLS), p50/p99, versus fetching + reading the same history from Temporal. Target >= 10x.
   Each is measured on its own as sporadic requests (10 ms apart), 1,000 of each in turns
   of 200, after warming every pooled connection and once PostgreSQL and Temporal have
   settled after the sync phases; the alternating figure (a cached read right after each
   fetch) is kept too, as the worst case for the cached read.

``WFMON_BENCH_SYNC_EXECUTIONS`` sets N (default 1000). ``WFMON_BENCH_SYNC_PYSPY=<file>``
records the (first) sync worker with py-spy during the first sync (``--format raw``;
``WFMON_BENCH_SYNC_PYSPY_EXTRA`` adds options, e.g. ``--gil`` to count only Python's CPU).
``WFMON_BENCH_SYNC_READ_PATH=0`` skips part 3 (for quicker runs while working on the sync).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from temporalio.client import Client, WorkflowHistory

from bench.common import process_cpu_seconds, tree_cpu_seconds, write_result
from tests.conftest import make_state_dir
from wfmon.db import Database, bulk
from wfmon.db.locks import libpq_url
from wfmon.db.sync import execution_ids
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
from wfmon.testing import make_owner

CONCURRENCY = 16
TARGET_CPU_RATIO = 1.5
TARGET_THROUGHPUT_RATIO = 0.35
IDLE_SECONDS = 3.0


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


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


# -- CPU from /proc -----------------------------------------------------------------------


@dataclass
class Processes:
    """The processes whose CPU a phase counts."""

    postgres: int
    temporal: int
    workers: tuple[int, ...] = ()

    def sample(self) -> dict[str, float]:
        return {
            "driver": time.process_time(),
            "workers": sum(process_cpu_seconds(p) for p in self.workers),
            "temporal": process_cpu_seconds(self.temporal),
            "postgres": tree_cpu_seconds(self.postgres),
        }


class Phase:
    """Wall time and CPU seconds per process of one measured phase."""

    def __init__(self, procs: Processes) -> None:
        self.procs = procs
        self.cpu: dict[str, float] = {}
        self.wall = 0.0
        self.load = ""

    @contextmanager
    def measure(self) -> Iterator[Phase]:
        before, t0 = self.procs.sample(), time.perf_counter()
        yield self
        self.wall = time.perf_counter() - t0
        after = self.procs.sample()
        self.cpu = {k: after[k] - before[k] for k in before}
        self.load = _loadavg()

    def per_execution_ms(self, executions: int) -> dict[str, float]:
        out = {k: round(v * 1000 / executions, 2) for k, v in self.cpu.items()}
        out["total"] = round(sum(self.cpu.values()) * 1000 / executions, 2)
        return out


def _mean(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round((a[k] + b[k]) / 2, 2) for k in a}


def _service_pids(state: Path) -> tuple[int, int]:
    records = json.loads((state / "services.json").read_text())
    return int(records["postgres"]["pid"]), int(records["temporal"]["pid"])


def _start_sync_only_worker(
    endpoints: Endpoints, state: Path, name: str = "sync-only-worker"
) -> subprocess.Popen[bytes]:
    """``wfmon worker --sync-only`` as a child process, returned once it polls."""
    env = {
        **os.environ,
        "WFMON_DATABASE_URL": endpoints.database_url,
        "WFMON_TEMPORAL_ADDRESS": endpoints.temporal_address,
        "WFMON_REDIS_URL": endpoints.redis_url,
        "WFMON_STATE_DIR": str(state),
    }
    log = state / f"{name}.log"
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


@contextmanager
def _sync_workers(
    endpoints: Endpoints, state: Path, count: int, first: int = 0
) -> Iterator[tuple[int, ...]]:
    procs = [
        _start_sync_only_worker(endpoints, state, f"sync-worker-{first + i}") for i in range(count)
    ]
    try:
        yield tuple(p.pid for p in procs)
    finally:
        for p in procs:
            stop_pid(p.pid, signal.SIGTERM)
            p.wait()


@contextmanager
def _py_spy(pid: int) -> Iterator[None]:
    """py-spy recording ``pid`` while the block runs, when WFMON_BENCH_SYNC_PYSPY is set."""
    target = os.environ.get("WFMON_BENCH_SYNC_PYSPY")
    if not target:
        yield
        return
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            *os.environ.get("WFMON_BENCH_SYNC_PYSPY_EXTRA", "").split(),
            "--output",
            target,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        stop_pid(spy.pid, signal.SIGINT)
        spy.wait()


# -- the floor ----------------------------------------------------------------------------

_FLOOR_TABLES = (("workflow_executions", "id"), ("component_executions", "workflow_execution_id"))
# The search rows the sync's triggers write too (docs/architecture/search.md): a second,
# "honest" floor adds them; the first one is the definition (execution and
# component rows only), and both are reported.
_SEARCH_TABLES = (
    ("execution_search_documents", "execution_id"),
    ("execution_search_terms", "execution_id"),
)


#: The tables a sync writes. Autovacuum is off for them in this benchmark: it started at
#: random points (its 60 s nap), and an autovacuum or autoanalyze of these tables inside a
#: measured phase cost up to ~10 ms per execution of PostgreSQL CPU (a re-sync measured
#: 15.35 against 5.6-6.0 ms), and gave the cached read a p99 of 26-45 ms. Instead each
#: phase is followed by a VACUUM (ANALYZE) of them, measured on its own and reported next
#: to the phase, so every phase starts from the same state and the upkeep is still shown.
_SYNC_TABLES = (
    "workflow_executions",
    "component_executions",
    "execution_search_documents",
    "execution_search_terms",
    "execution_search_errors",
)


def _autovacuum_off(owner_url: str) -> None:
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner:
        for table in _SYNC_TABLES:
            bulk.set_autovacuum(owner, table, False)


def _upkeep(owner_url: str, base: Processes, executions: int) -> dict[str, float]:
    """VACUUM (ANALYZE) of the sync's tables; its CPU per execution (see _SYNC_TABLES)."""
    phase = Phase(base)
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner, phase.measure():
        bulk.vacuum_analyze(owner, _SYNC_TABLES)
    return phase.per_execution_ms(executions)


def _write_floor(
    db: Database,
    owner_url: str,
    ids: list[UUID],
    phase: Phase,
    tables: tuple[tuple[str, str], ...] = _FLOOR_TABLES,
) -> int:
    """The synced rows of ``ids`` in ``tables`` written again by one plain COPY transaction
    (measured); returns the bytes copied."""
    with db.as_system() as conn:
        data = {t: bulk.export_rows(conn, t, key, ids) for t, key in tables}
    tag = uuid.uuid4().hex[:8]
    scratch = {t: f"bench_floor_{t}_{tag}" for t, _ in tables}
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner:
        for t, name in scratch.items():
            bulk.create_scratch_copy(owner, t, name)
        try:
            with phase.measure(), owner.transaction():
                for t, name in scratch.items():
                    bulk.copy_rows_into(owner, name, data[t])
        finally:
            for name in scratch.values():
                bulk.drop_table(owner, name)
    return sum(len(d) for d in data.values())


async def _generate(
    client: Client, db: Database, executions: int
) -> tuple[list[ExecutionRef], ExecutionRef, Any, float]:
    owner = make_owner(db, "bench")
    ctx = owner.run_context()
    queue = f"bench-builder-{uuid.uuid4().hex[:6]}"
    async with build_worker(client, task_queue=queue):
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
        big = await run_one(_definition("bench-100", 100))
    return refs, big, owner.user.auth_user_id, generate_s


async def _bench(
    client: Client, db: Database, executions: int, endpoints: Endpoints, state: Path
) -> dict[str, Any]:
    refs, big, auth, generate_s = await _generate(client, db, executions)
    assert auth is not None
    postgres_pid, temporal_pid = _service_pids(state)
    base = Processes(postgres=postgres_pid, temporal=temporal_pid)
    n = len(refs)
    owner_url = endpoints.migrations_url
    _autovacuum_off(owner_url)
    _upkeep(owner_url, base, n)
    upkeep: dict[str, dict[str, float]] = {}

    # Floors 1 and 2, measured before the sync phases and again after them (the machine's
    # speed drifts by tens of percent within minutes; the ratios use the mean of the two).
    fetch_gate = asyncio.Semaphore(CONCURRENCY)

    async def fetch(ref: ExecutionRef) -> WorkflowHistory:
        async with fetch_gate:
            h = client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id)
            return await h.fetch_history()

    async def floor_fetch_and_read() -> tuple[Phase, Phase, int]:
        """Floor 1: fetch every history, same concurrency as the sync. Floor 2: read
        them (what the sync's reader does with the same events)."""
        fetching = Phase(base)
        with fetching.measure():
            histories = list(await asyncio.gather(*(fetch(r) for r in refs)))
        reading = Phase(base)
        with reading.measure():
            for h in histories:
                read_history(h.events, run_id=None)
        return fetching, reading, sum(len(h.events) for h in histories)

    fetched, reading, events = await floor_fetch_and_read()

    # The sync: first sync, re-sync, re-sync with a second process. Each measured phase
    # starts with warm workers (imports, the workflow sandbox, prepared statements): one
    # sync of the 100-component execution first, an unmeasured re-sync once the second
    # process has joined.
    syncs: dict[str, Phase] = {}
    with _sync_workers(endpoints, state, 1) as pids:
        one = Processes(postgres_pid, temporal_pid, pids)
        await sync_many(client, [big])
        idle = Phase(one)
        with idle.measure():
            await asyncio.sleep(IDLE_SECONDS)
        syncs["first"] = Phase(one)
        with _py_spy(pids[0]), syncs["first"].measure():
            report = await sync_many(client, refs, concurrency=CONCURRENCY)
        assert not report.failed, report.failed[:3]
        upkeep["first"] = _upkeep(owner_url, base, n)
        syncs["resync"] = Phase(one)
        with syncs["resync"].measure():
            report = await sync_many(client, refs, concurrency=CONCURRENCY)
        assert not report.failed, report.failed[:3]
        upkeep["resync"] = _upkeep(owner_url, base, n)
        with _sync_workers(endpoints, state, 1, first=1) as more:
            two = Processes(postgres_pid, temporal_pid, pids + more)
            report = await sync_many(client, refs, concurrency=CONCURRENCY)
            assert not report.failed, report.failed[:3]
            _upkeep(owner_url, base, n)
            syncs["resync_two_processes"] = Phase(two)
            with syncs["resync_two_processes"].measure():
                report = await sync_many(client, refs, concurrency=CONCURRENCY)
            assert not report.failed, report.failed[:3]
            upkeep["resync_two_processes"] = _upkeep(owner_url, base, n)

    # Floors 1 and 2 again, the sync workers stopped as before.
    fetched_after, reading_after, _ = await floor_fetch_and_read()

    # Floor 3: the rows the sync wrote, by one plain COPY transaction.
    with db.as_system() as conn:
        ids = list(
            execution_ids(
                conn, client.namespace, [(r.workflow_id, r.run_id) for r in refs]
            ).values()
        )
        big_id = execution_ids(conn, client.namespace, [(big.workflow_id, big.run_id)])[
            (big.workflow_id, big.run_id)
        ]
    assert len(ids) == n
    writing = Phase(base)
    copied = _write_floor(db, endpoints.migrations_url, ids, writing)
    writing_search = Phase(base)
    copied_search = _write_floor(
        db, endpoints.migrations_url, ids, writing_search, tables=_SEARCH_TABLES
    )

    floor = {
        "fetch": _mean(fetched.per_execution_ms(n), fetched_after.per_execution_ms(n)),
        "read": _mean(reading.per_execution_ms(n), reading_after.per_execution_ms(n)),
        "write": writing.per_execution_ms(n),
    }
    fetch_wall = (fetched.wall + fetched_after.wall) / 2
    floor_ms = round(sum(f["total"] for f in floor.values()), 2)
    search_rows = writing_search.per_execution_ms(n)
    floor_search_ms = round(floor_ms + search_rows["total"], 2)
    figures: dict[str, Any] = {
        "executions": n,
        "activities_per_execution": 20,
        "events": events,
        "generate_s": round(generate_s, 1),
        "floor_cpu_ms_per_execution": floor,
        "floor_total_cpu_ms": floor_ms,
        "floor_copy_bytes": copied,
        # The floor with the search documents and term rows copied too.
        "floor_search_rows_cpu_ms_per_execution": search_rows,
        "floor_with_search_total_cpu_ms": floor_search_ms,
        "floor_search_copy_bytes": copied_search,
        "raw_fetch_history_per_s": round(n / fetch_wall, 1),
        # The two measurements the floor's fetch and read are the mean of.
        "floor_fetch_read_before_after_ms": [
            round(fetched.per_execution_ms(n)["total"] + reading.per_execution_ms(n)["total"], 2),
            round(
                fetched_after.per_execution_ms(n)["total"]
                + reading_after.per_execution_ms(n)["total"],
                2,
            ),
        ],
        "raw_fetch_history_per_s_before_after": [
            round(n / fetched.wall, 1),
            round(n / fetched_after.wall, 1),
        ],
        "load": {"fetch": fetched.load, "floor_write": writing.load},
        # What Temporal, PostgreSQL and an idle sync worker burn per second doing nothing
        # (timers, background writers, pollers): a long phase on a loaded machine counts
        # more of it, so the figures beyond idle are shown next to the raw ones.
        "idle_cpu_ms_per_s": {
            k: round(v * 1000 / idle.wall, 2) for k, v in idle.cpu.items() if k != "driver"
        },
    }
    for name, phase in syncs.items():
        cpu = phase.per_execution_ms(n)
        idle_share = sum(
            idle.cpu[k]
            / idle.wall
            * phase.wall
            * (len(phase.procs.workers) if k == "workers" else 1)
            for k in ("workers", "temporal", "postgres")
        )
        beyond = cpu["total"] - idle_share * 1000 / n
        figures[f"sync_{name}"] = {
            "per_s": round(n / phase.wall, 1),
            "to_fetch_ratio": round(fetch_wall / phase.wall, 3),
            "cpu_ms_per_execution": cpu,
            "cpu_to_floor_ratio": round(cpu["total"] / floor_ms, 2),
            "cpu_to_floor_with_search_ratio": round(cpu["total"] / floor_search_ms, 2),
            "cpu_beyond_idle_ms_per_execution": round(beyond, 2),
            "cpu_beyond_idle_to_floor_ratio": round(beyond / floor_ms, 2),
            # The VACUUM (ANALYZE) of the sync's tables right after the phase (not in the
            # figures above; see _SYNC_TABLES).
            "upkeep_after_postgres_cpu_ms_per_execution": upkeep[name]["postgres"],
            "load": phase.load,
        }
    first = figures["sync_first"]
    figures["targets_met"] = (
        first["cpu_to_floor_ratio"] <= TARGET_CPU_RATIO
        and first["to_fetch_ratio"] >= TARGET_THROUGHPUT_RATIO
        and figures["sync_resync_two_processes"]["per_s"] >= figures["sync_resync"]["per_s"]
    )

    if os.environ.get("WFMON_BENCH_SYNC_READ_PATH", "1") == "0":
        return figures
    # Read path as the web app sees it: its own pool (``wfmon serve`` sizing), no workers,
    # in steady state (every pooled connection has run, and so prepared, the statements).
    with Database(endpoints.database_url) as web_db:
        service = ExecutionService(web_db, client)
        return {**figures, **await _read_path(service, client, big_id, auth, big, base)}


#: Samples of each read path. A p99 of 200 (the second slowest) moved 2.2-11.2 ms between
#: runs of the same code; 1,000 make it the tenth slowest.
READ_SAMPLES = 1000
#: The machine counts as settled after the sync phases when PostgreSQL and Temporal use
#: less than this share of a core for two seconds in a row (autovacuum of the tables the
#: sync wrote, Temporal's own timers): the p99 is the read's, not theirs.
SETTLED_SHARE = 0.05
SETTLE_LIMIT_S = 60.0


async def _settle(services: Processes) -> float:
    """Wait until ``services`` are quiet (see SETTLED_SHARE); the seconds waited."""
    t0 = time.perf_counter()
    quiet = 0
    while quiet < 2 and time.perf_counter() - t0 < SETTLE_LIMIT_S:
        before = services.sample()
        await asyncio.sleep(1.0)
        after = services.sample()
        busy = sum(after[k] - before[k] for k in ("postgres", "temporal"))
        quiet = quiet + 1 if busy < SETTLED_SHARE else 0
    return time.perf_counter() - t0


async def _read_path(
    service: ExecutionService,
    client: Client,
    execution_id: UUID,
    auth: UUID,
    big: ExecutionRef,
    services: Processes,
) -> dict[str, Any]:
    """The cached read and its baseline, fetching + reading the history from Temporal."""
    for _ in range(200):
        await service.get_execution_details(execution_id, auth)
    settled_s = await _settle(services)

    async def cached_read() -> None:
        details = await service.get_execution_details(execution_id, auth)
        assert len(details.components) == 100 and not details.synced_now

    async def fetch_and_read() -> None:
        handle = client.get_workflow_handle(big.workflow_id, run_id=big.run_id)
        assert len(read_history(await handle.fetch_history()).components) == 100

    # Each path on its own, as sporadic requests (10 ms apart) see it, in blocks of 200 taken
    # in turn (so a slow spell of the machine falls on both); then alternating, where each
    # cached read follows a fetch (and pays for the CPU and caches it left busy).
    cached: list[float] = []
    direct: list[float] = []
    for _ in range(READ_SAMPLES // 200):
        cached += [await _timed(cached_read, gap_s=0.01) for _ in range(200)]
        direct += [await _timed(fetch_and_read, gap_s=0.01) for _ in range(200)]
    cached_alt, direct_alt = [], []
    for _ in range(200):
        cached_alt.append(await _timed(cached_read))
        direct_alt.append(await _timed(fetch_and_read))

    return {
        "read_samples": len(cached),
        "read_settled_after_s": round(settled_s, 1),
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
    first, two = f["sync_first"], f["sync_resync_two_processes"]
    reads = (
        f"details p50 {f['details_cached_p50_ms']:.1f} ms vs {f['fetch_and_read_p50_ms']:.1f} ms "
        f"({f['cache_speedup_p50']:.1f}x, p99 {f['cache_speedup_p99']:.1f}x, target >= 10x); "
        if "details_cached_p50_ms" in f
        else ""
    )
    write_result(
        "sync",
        f,
        f"sync CPU {first['cpu_ms_per_execution']['total']:.1f} ms/exec vs floor "
        f"{f['floor_total_cpu_ms']:.1f} ms ({first['cpu_to_floor_ratio']:.2f}x, target <= "
        f"{TARGET_CPU_RATIO}); {first['per_s']:.0f} exec/s vs {f['raw_fetch_history_per_s']:.0f}"
        f"/s raw fetch ({first['to_fetch_ratio']:.2f}, target >= {TARGET_THROUGHPUT_RATIO}); "
        f"re-sync {f['sync_resync']['per_s']:.0f}/s, two processes {two['per_s']:.0f}/s; "
        f"with the search rows in the floor {first['cpu_to_floor_with_search_ratio']:.2f}x; "
        f"{reads}beyond idle {first['cpu_beyond_idle_to_floor_ratio']:.2f}x; load {first['load']}",
    )


if __name__ == "__main__":
    main()
