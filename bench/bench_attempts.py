"""Does recording attempts slow activities? ``wfmon.attempts.interceptor`` against none.

Three workers run the same plain workflow (``bench/own_workflow.py``: 50 trivial
activities one after another) on the real Temporal dev server: one without interceptors
(the baseline), one with ``interceptors=[wfmon.attempts.interceptor(dsn=...)]`` writing to
the real PostgreSQL as ``wfmon_recorder``, and one whose DSN points at a port where nothing
listens (the database down). Runs alternate between the variants (a different one first
each round) and the ratios are medians of per-round ratios, so machine noise hits them
alike. Figures: each variant's median workflow time and the ratios to the baseline (target
<= 1.10), the worker process's CPU per workflow and its ratio (the recording's whole cost,
background writes included), and the cost of one ``record()`` call (the only work on the
activity's path) in microseconds.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

import wfmon.attempts
from bench.common import write_result
from bench.own_workflow import ManyActivities, noop
from tests.conftest import make_state_dir
from wfmon.dev.process import free_port
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations

ACTIVITIES = 50
ROUNDS = 7
TARGET = 1.10


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def record_cost_us(calls: int = 100_000) -> float:
    """Microseconds per ``AttemptRecorder.record`` (buffer append; no loop, no flusher)."""
    recorder = wfmon.attempts.AttemptRecorder(
        wfmon.attempts.InMemoryAttemptSink(), capacity=calls + 1
    )
    now = datetime.now(UTC)
    rec = wfmon.attempts.AttemptRecord(
        namespace="default", workflow_id="wf", run_id="r", workflow_type="T", activity_id="1",
        activity_type="noop", attempt=1, is_local=False, task_queue="q", scheduled_at=now,
        started_at=now, ended_at=now, outcome=wfmon.attempts.AttemptOutcome.COMPLETED,
    )  # fmt: skip
    t0 = time.perf_counter()
    for _ in range(calls):
        recorder.record(rec)
    return (time.perf_counter() - t0) / calls * 1e6


async def _measure(address: str, recorder_url: str) -> dict[str, Any]:
    client = await Client.connect(address)
    down_url = f"postgresql://wfmon_recorder:x@127.0.0.1:{free_port()}/wfmon"
    recording = wfmon.attempts.interceptor(dsn=recorder_url)
    down = wfmon.attempts.interceptor(dsn=down_url, close_timeout=0.5)
    variants: dict[str, list[Interceptor]] = {
        "baseline": [],
        "recording": [recording],
        "database_down": [down],
    }
    queues = {name: f"bench-attempts-{name}-{uuid.uuid4().hex[:6]}" for name in variants}
    workers = [
        Worker(
            client,
            task_queue=queues[name],
            workflows=[ManyActivities],
            activities=[noop],
            interceptors=interceptors,
        )
        for name, interceptors in variants.items()
    ]
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for w in workers:
        await w.__aenter__()
    try:
        names = list(variants)
        for round_ in range(ROUNDS + 1):  # round 0 warms up every worker
            # A different variant goes first each round: none always gets the quiet slot.
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                t0, c0 = time.perf_counter(), _process_cpu()
                await client.execute_workflow(
                    ManyActivities.run,
                    ACTIVITIES,
                    id=f"bench-attempts-{uuid.uuid4().hex[:8]}",
                    task_queue=queues[name],
                )
                if round_:
                    times[name].append((time.perf_counter() - t0) * 1000)
                    cpu[name].append((_process_cpu() - c0) * 1000)
        await recording.recorder.flush()
    finally:
        for w in workers:
            await w.__aexit__(None, None, None)
        await recording.close()
        await down.close()
    figures: dict[str, Any] = {
        f"{name}_workflow_ms": round(statistics.median(t), 1) for name, t in times.items()
    }
    # Median of the per-round ratios: each round's three runs saw the same machine.
    for name in ("recording", "database_down"):
        ratios = [v / b for v, b in zip(times[name], times["baseline"], strict=True)]
        figures[f"{name}_over_baseline"] = round(statistics.median(ratios), 3)
        # The worker process's CPU (user + system) while the workflow ran: the recording's
        # whole cost, background writes included (wall time on a busy machine is noisier).
        figures[f"{name}_cpu_over_baseline"] = round(
            statistics.median(cpu[name]) / statistics.median(cpu["baseline"]), 3
        )
    for name, values in cpu.items():
        figures[f"{name}_process_cpu_ms"] = round(statistics.median(values), 1)
    stats = recording.stats()
    figures["recorded"], figures["written"] = stats.recorded, stats.written
    figures["database_down_dropped_or_buffered"] = down.stats().buffered + down.stats().dropped
    return figures


def main() -> None:
    state = make_state_dir("wfmon-bench-attempts-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        figures = asyncio.run(_measure(endpoints.temporal_address, endpoints.recorder_database_url))
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    figures["record_call_us"] = round(record_cost_us(), 2)
    figures["activities_per_workflow"], figures["rounds"] = ACTIVITIES, ROUNDS
    figures["target_ratio"] = TARGET
    ok = max(figures["recording_over_baseline"], figures["database_down_over_baseline"]) <= TARGET
    summary = (
        f"workflow of {ACTIVITIES} activities: recording {figures['recording_over_baseline']:.2f}x,"
        f" database down {figures['database_down_over_baseline']:.2f}x the baseline "
        f"(worker CPU {figures['recording_cpu_over_baseline']:.2f}x /"
        f" {figures['database_down_cpu_over_baseline']:.2f}x) "
        f"({figures['baseline_workflow_ms']:.0f} ms; target <= {TARGET}: "
        f"{'met' if ok else 'NOT met'}); record() {figures['record_call_us']:.1f} us"
    )
    write_result("attempts", figures, summary)


if __name__ == "__main__":
    main()
