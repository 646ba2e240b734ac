"""The attempt recorder: bounded, batched, never in the activity's way; and the
PostgreSQL sink writing real rows as the system role."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
from temporal_harness import TemporalHarness
from temporalio.client import Client

from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.history import read_history
from wfmon.migrate import apply_migrations
from wfmon.model import WorkflowDefinition
from wfmon.runtime import start_builder_run
from wfmon.runtime.attempts import (
    AttemptOutcome,
    AttemptRecord,
    AttemptRecorder,
    InMemoryAttemptSink,
)
from wfmon.runtime.postgres_sink import PostgresAttemptSink
from wfmon.runtime.worker import build_worker

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def record(attempt: int, activity_id: str = "a") -> AttemptRecord:
    return AttemptRecord(
        namespace="default",
        workflow_id="wf",
        run_id="run",
        workflow_type="T",
        activity_id=activity_id,
        activity_type="flaky",
        attempt=attempt,
        is_local=False,
        task_queue="q",
        scheduled_at=NOW,
        started_at=NOW,
        ended_at=NOW,
        outcome=AttemptOutcome.COMPLETED,
    )


@dataclass
class SwitchableSink:
    """A real in-memory store that can be taken down, like a database."""

    up: bool = False
    records: list[AttemptRecord] = field(default_factory=list)
    calls: int = 0

    async def write(self, records: Sequence[AttemptRecord]) -> None:
        self.calls += 1
        if not self.up:
            raise ConnectionError("sink is down")
        self.records.extend(records)


def test_full_buffer_drops_the_oldest_and_counts() -> None:
    recorder = AttemptRecorder(InMemoryAttemptSink(), capacity=3)
    for n in range(1, 6):
        recorder.record(record(n))
    stats = recorder.stats()
    assert (stats.recorded, stats.dropped, stats.buffered) == (5, 2, 3)
    asyncio.run(recorder.flush())
    sink = recorder.sink
    assert isinstance(sink, InMemoryAttemptSink)
    assert [r.attempt for r in sink.records] == [3, 4, 5]


def test_writes_in_batches_and_keeps_a_failed_batch_in_order() -> None:
    async def go() -> SwitchableSink:
        sink = SwitchableSink(up=False)
        recorder = AttemptRecorder(sink, batch_size=2, flush_interval=0.01, max_backoff=0.02)
        async with recorder:
            for n in range(1, 6):
                recorder.record(record(n))
            await asyncio.sleep(0.1)
            stats = recorder.stats()
            assert stats.write_failures >= 2 and stats.buffered == 5 and stats.written == 0
            sink.up = True
            for _ in range(100):
                if recorder.stats().buffered == 0:
                    break
                await asyncio.sleep(0.01)
        assert recorder.stats().written == 5
        return sink

    sink = asyncio.run(go())
    assert [r.attempt for r in sink.records] == [1, 2, 3, 4, 5]


def test_close_flushes_and_gives_up_after_its_timeout() -> None:
    async def go() -> tuple[int, float]:
        ok = InMemoryAttemptSink()
        async with AttemptRecorder(ok, flush_interval=10) as recorder:
            recorder.record(record(1))
        down = AttemptRecorder(SwitchableSink(up=False), flush_interval=0.01, close_timeout=0.3)
        down.start()
        down.record(record(1))
        t0 = time.perf_counter()
        await down.close()
        return len(ok.records), time.perf_counter() - t0

    written, waited = asyncio.run(go())
    assert written == 1
    assert waited < 1.0


def test_activities_do_not_notice_a_sink_that_is_down(endpoints: Endpoints) -> None:
    """A worker whose sink is down runs its workflow as fast as usual; the records wait in
    the buffer and reach the sink once it is back."""
    definition = WorkflowDefinition.model_validate(
        {
            "id": "sink-down",
            "name": "sink down",
            "nodes": [{"id": "a", "component": "transform"}, {"id": "b", "component": "transform"}],
            "edges": [{"source": "a", "target": "b"}],
        }
    )

    async def go() -> tuple[float, SwitchableSink, int]:
        client = await Client.connect(endpoints.temporal_address)
        sink = SwitchableSink(up=False)
        recorder = AttemptRecorder(sink, flush_interval=0.01, max_backoff=0.05)
        queue = f"sink-down-{uuid.uuid4().hex[:6]}"
        async with recorder, build_worker(client, task_queue=queue, recorder=recorder):
            t0 = time.perf_counter()
            handle = await start_builder_run(client, definition, task_queue=queue)
            await handle.result()
            elapsed = time.perf_counter() - t0
            buffered = recorder.stats().buffered
            sink.up = True
            await recorder.flush()
        return elapsed, sink, buffered

    elapsed, sink, buffered = asyncio.run(go())
    assert elapsed < 2.0
    assert buffered == 2 and sink.calls > 1
    assert sorted(r.activity_id for r in sink.records) == ["a", "b"]


@pytest.fixture(scope="module")
def database(endpoints: Endpoints) -> Database:
    apply_migrations(endpoints.migrations_url)
    return Database(endpoints.database_url)


def test_postgres_sink_writes_every_attempt_once(
    runtime: TemporalHarness, database: Database, endpoints: Endpoints
) -> None:
    definition = WorkflowDefinition.model_validate(
        {
            "id": "pg-attempts",
            "name": "pg attempts",
            "nodes": [
                {
                    "id": "shaky",
                    "component": "flaky",
                    "config": {"fail_times": 1},
                    "retry_policy": {
                        "strategy": "fail_after_attempts",
                        "max_attempts": 3,
                        "interval": "100ms",
                    },
                }
            ],
        }
    )
    sink = PostgresAttemptSink(database)

    async def go() -> tuple[str, str, int]:
        queue = f"pg-{uuid.uuid4().hex[:6]}"
        recorder = AttemptRecorder(sink, flush_interval=0.05)
        async with recorder, build_worker(runtime.client, task_queue=queue, recorder=recorder):
            handle = await start_builder_run(runtime.client, definition, task_queue=queue)
            await handle.result()
            attempt = read_history(await handle.fetch_history()).component("shaky")
        # Offering the same records again (a retried batch) must not duplicate rows.
        await sink.write(
            [
                replace(
                    record(1, "shaky"),
                    workflow_id=handle.id,
                    run_id=handle.result_run_id or "",
                    outcome=AttemptOutcome.FAILED,
                    started_at=NOW,
                    ended_at=NOW,
                )
            ]
        )
        return handle.id, handle.result_run_id or "", attempt.temporal_attempt

    try:
        workflow_id, run_id, temporal_attempts = runtime.run(go())
        with database.as_system() as conn:
            rows = conn.execute(
                "SELECT activity_id, attempt, outcome, failure_type, activity_type, "
                "temporal_run_id, worker_identity FROM component_execution_attempts "
                "WHERE temporal_workflow_id = %s ORDER BY attempt",
                (workflow_id,),
            ).fetchall()
    finally:
        sink.close()
    assert temporal_attempts == 2
    assert [(r["activity_id"], r["attempt"], r["outcome"]) for r in rows] == [
        ("shaky", 1, "failed"),
        ("shaky", 2, "completed"),
    ]
    assert rows[0]["failure_type"] == "FlakyError"
    assert {r["temporal_run_id"] for r in rows} == {run_id}
    assert all(r["activity_type"] == "flaky" and r["worker_identity"] for r in rows)


def test_postgres_sink_down_keeps_records_buffered() -> None:
    from wfmon.dev.process import free_port

    down = Database(f"postgresql://wfmon@127.0.0.1:{free_port()}/wfmon")
    sink = PostgresAttemptSink(down, open_timeout=0.3)

    async def go() -> tuple[int, int]:
        recorder = AttemptRecorder(sink, flush_interval=0.01, close_timeout=0.5)
        recorder.start()
        t0 = time.perf_counter()
        recorder.record(record(1))  # returns at once, whatever the database does
        assert time.perf_counter() - t0 < 0.01
        await asyncio.sleep(0.5)
        stats = recorder.stats()
        await recorder.close()
        return stats.buffered, stats.write_failures

    try:
        buffered, failures = asyncio.run(go())
    finally:
        sink.close()
    assert buffered == 1 and failures >= 1
