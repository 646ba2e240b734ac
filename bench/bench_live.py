"""Live push: fan-out latency to 200 open streams, the web app's connections, and what the
NOTIFY triggers add to a sync write.

Measured in one run on embedded services, against ``wfmon serve`` in its own process (as
``bench_api`` starts it: its own pool of 20 on the web login, and its one LISTEN
connection):

1. Fan-out: a sync write (``write_execution``: the execution upsert, its component rows,
   attempts and the synced mark, in one transaction) until the ``update`` frame arrives
   on each open SSE stream, timed from just before the write starts. Baseline: the same
   with ONE open stream. Target: p95 <= 500 ms with 200 streams.
2. Connections: PostgreSQL sessions of the web login (pool + LISTEN) with 1 and with 200
   open streams (opened one after another), after a warm-up that opens 200 streams 20 at
   a time and closes them (a burst may grow the pool, up to its max of 20); and how many
   LISTEN connections there are. Target: the same count at 1 and 200 open streams, one
   LISTEN connection. The write's own time (until its commit returns) is kept next to
   each latency: the rest is delivery.
3. Trigger cost: the same sync write of an execution with 100 component rows and 100
   attempts, with the 0520 triggers enabled and disabled (by the tables' owner), in
   alternating rounds; median ms per write and the ratio.

Knobs: ``WFMON_BENCH_LIVE_STREAMS`` (200), ``WFMON_BENCH_LIVE_WRITES`` (20).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.bench_api import SECRET, AppProcess
from bench.common import latency_figures, write_result
from tests.conftest import make_state_dir
from wfmon.db import Database, notify
from wfmon.db.locks import libpq_url
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.dev.postgres import WEB_ROLE
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations
from wfmon.model import ComponentStatus, ExecutionStatus
from wfmon.testing import WorkflowOwner, attempt_row, execution_row, make_owner, write_execution


@dataclass
class Stream:
    """One SSE stream over a raw socket; ``arrivals`` are perf_counter() of update frames."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    arrivals: list[float] = field(default_factory=list)
    got: asyncio.Event = field(default_factory=asyncio.Event)

    async def pump(self) -> None:
        while line := await self.reader.readline():
            if line.startswith(b"event: update"):
                self.arrivals.append(time.perf_counter())
                self.got.set()

    def close(self) -> None:
        self.writer.close()


async def open_stream(url: str, path: str, token: str) -> Stream:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"{path}: {status.decode().strip()}")
    while (await reader.readline()).strip():  # headers
        pass
    while not (await reader.readline()).startswith(b"event: ready"):
        pass
    return Stream(reader, writer)


async def open_many(url: str, paths: list[str], token: str, concurrency: int = 20) -> list[Stream]:
    gate = asyncio.Semaphore(concurrency)

    async def one(path: str) -> Stream:
        async with gate:
            return await open_stream(url, path, token)

    return list(await asyncio.gather(*(one(p) for p in paths)))


def _running(owner: WorkflowOwner) -> ExecutionRow:
    return execution_row(owner, status=ExecutionStatus.RUNNING)


def _component(i: int) -> ComponentExecutionRow:
    return ComponentExecutionRow(
        f"node-{i:03d}", 5 + 4 * i, ComponentStatus.COMPLETED, started_at=datetime.now(UTC)
    )


async def fan_out(db: Database, row: ExecutionRow, streams: list[Stream], writes: int) -> Any:
    """Per write: latency (ms) of each stream's update, of the slowest one, and how long
    the write itself took (until its commit returned)."""
    tasks = [asyncio.create_task(s.pump()) for s in streams]
    each: list[float] = []
    slowest: list[float] = []
    write_ms: list[float] = []
    try:
        for i in range(writes):
            for s in streams:
                s.got.clear()
            t0 = time.perf_counter()
            await asyncio.to_thread(write_execution, db, row, components=[_component(i)])
            write_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.wait_for(asyncio.gather(*(s.got.wait() for s in streams)), 10)
            lat = [(s.arrivals[-1] - t0) * 1000 for s in streams]
            each.extend(lat)
            slowest.append(max(lat))
            await asyncio.sleep(0.05)
    finally:
        for t in tasks:
            t.cancel()
    return each, slowest, write_ms


def web_connections(db: Database) -> tuple[int, int]:
    with db.as_system() as conn:
        return notify.login_connection_count(conn, WEB_ROLE), notify.listener_count(conn)


async def wait_listening(db: Database, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while web_connections(db)[1] < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the web app never started listening")
        await asyncio.sleep(0.1)


async def _live(db: Database, url: str, alice: WorkflowOwner, n: int, writes: int) -> Any:
    token = alice.dev_token(SECRET)
    row = _running(alice)
    e = write_execution(db, row)
    paths = [
        f"/api/executions/{e}/stream",
        f"/api/workflows/{alice.workflow.id}/executions/stream",
        f"/api/projects/{alice.project.id}/attention/stream",
    ]
    await wait_listening(db)
    f: dict[str, Any] = {"streams": n, "writes": writes}
    f["web_connections_before_warmup"] = web_connections(db)[0]
    for s in await open_many(url, [paths[i % 3] for i in range(n)], token):  # warm-up
        s.close()
    await asyncio.sleep(0.5)

    f["web_connections_after_warmup"] = web_connections(db)[0]
    # Opened one after another: what is measured is what OPEN streams hold (opening many
    # at once can grow the pool, up to its max of 20, never beyond).
    one = await open_many(url, paths[:1], token, concurrency=1)
    f["web_connections_1_stream"], f["listen_connections_1_stream"] = web_connections(db)
    each1, _, w1 = await fan_out(db, row, one, writes)
    f["baseline_1_stream"] = latency_figures(each1, 95)
    f["write_ms_1_stream"] = latency_figures(w1, 95)
    for s in one:
        s.close()

    many = await open_many(url, [paths[i % 3] for i in range(n)], token, concurrency=1)
    f[f"web_connections_{n}_streams"], f[f"listen_connections_{n}_streams"] = web_connections(db)
    each, slowest, wn = await fan_out(db, row, many, writes)
    f[f"fan_out_{n}_streams"] = latency_figures(each, 95)
    f[f"write_ms_{n}_streams"] = latency_figures(wn, 95)
    f[f"slowest_of_{n}_per_write"] = latency_figures(slowest, 95)
    for s in many:
        s.close()
    return f


def trigger_cost(db: Database, owner_url: str, alice: WorkflowOwner, rounds: int = 6) -> Any:
    """Median ms of one sync write (100 components, 100 attempts) with and without 0520."""
    row = _running(alice)
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    components = [_component(i) for i in range(100)]
    attempts = [
        attempt_row(row, f"node-{i:03d}", 1, t0, outcome="completed", ended_at=t0)
        for i in range(100)
    ]
    times: dict[bool, list[float]] = {True: [], False: []}

    def write(r: ExecutionRow) -> float:
        start = time.perf_counter()
        write_execution(db, r, components=components, attempts=attempts)
        return (time.perf_counter() - start) * 1000

    write(row)  # the execution's first write (an insert) is not what a re-sync costs
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner:
        try:
            for i in range(rounds * 2):
                enabled = i % 2 == 0
                notify.set_live_triggers(owner, enabled=enabled)
                write(replace(row, error_message=f"round {i}"))  # warm
                times[enabled].extend(
                    write(replace(row, error_message=f"round {i}.{k}")) for k in range(10)
                )
        finally:
            notify.set_live_triggers(owner, enabled=True)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    return {
        "write_ms_with_triggers": round(on, 2),
        "write_ms_without_triggers": round(off, 2),
        "ratio": round(on / off, 3),
        "writes_each": len(times[True]),
    }


def one_web_process(database_url: str, temporal_address: str) -> AppProcess:
    """``wfmon serve`` as ONE process (its default is one per core): the streams' figures
    are per web-app process."""
    return AppProcess(database_url, temporal_address, workers=1)


def main() -> None:
    n = int(os.environ.get("WFMON_BENCH_LIVE_STREAMS", "200"))
    writes = int(os.environ.get("WFMON_BENCH_LIVE_WRITES", "20"))
    state = make_state_dir("wfmon-bench-live-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        with Database(endpoints.database_url, max_size=4) as db:
            alice = make_owner(db, "bench-live")
            server = one_web_process(endpoints.web_database_url, endpoints.temporal_address)
            try:
                f = asyncio.run(_live(db, server.url, alice, n, writes))
            finally:
                server.stop()
            f["trigger_cost"] = trigger_cost(db, endpoints.migrations_url, alice)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    fan, base, tc = f[f"fan_out_{n}_streams"], f["baseline_1_stream"], f["trigger_cost"]
    f["targets"] = {
        "fan_out_p95_at_most_500_ms": fan["p95_ms"] <= 500,
        "connections_do_not_grow": f["web_connections_1_stream"]
        == f[f"web_connections_{n}_streams"],
        "one_listen_connection": f[f"listen_connections_{n}_streams"] == 1,
    }
    write_result(
        "live",
        f,
        f"{n} streams: fan-out p50/p95 {fan['p50_ms']:.0f}/{fan['p95_ms']:.0f} ms vs 1 stream "
        f"{base['p50_ms']:.0f}/{base['p95_ms']:.0f} ms; web connections "
        f"{f['web_connections_1_stream']} at 1 / {f[f'web_connections_{n}_streams']} at {n} "
        f"streams ({f[f'listen_connections_{n}_streams']} LISTEN); sync write with triggers "
        f"{tc['write_ms_with_triggers']:.1f} ms vs {tc['write_ms_without_triggers']:.1f} ms "
        f"without ({tc['ratio']:.2f}x); targets met: {all(f['targets'].values())}",
    )


if __name__ == "__main__":
    main()
