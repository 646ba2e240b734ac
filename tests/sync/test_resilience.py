"""Sync survives a killed worker and a restarted Temporal server.

These tests run their own services (Temporal, PostgreSQL, Redis) so that the only sync
worker polling is the ``wfmon worker`` process they start, kill and restart by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from tests.conftest import make_state_dir
from wfmon.db import Database
from wfmon.dev import postgres, temporal
from wfmon.dev.process import stop_pid
from wfmon.dev.services import EmbeddedServices, Endpoints, Service
from wfmon.migrate import apply_migrations
from wfmon.model import WorkflowDefinition
from wfmon.runtime import start_builder_run
from wfmon.sync.discovery import discover, record_discovered
from wfmon.sync.messages import CoordinatorConfig, ExecutionRef, coordinator_workflow_id
from wfmon.sync.worker import coordinator, request_sync
from wfmon.sync.workflows import SyncCoordinatorWorkflow

WFMON = str(Path(sys.executable).parent / "wfmon")


@pytest.fixture(scope="module")
def private_services() -> Iterator[tuple[EmbeddedServices, Endpoints]]:
    state = make_state_dir("wfmon-resilience-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        yield services, endpoints
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)


class WorkerProcess:
    """``wfmon worker`` (builder + sync) as a child process, stopped or killed by PID."""

    def __init__(self, endpoints: Endpoints, state: Path, *extra: str) -> None:
        env = {
            **os.environ,
            "WFMON_DATABASE_URL": endpoints.database_url,
            "WFMON_TEMPORAL_ADDRESS": endpoints.temporal_address,
            "WFMON_REDIS_URL": endpoints.redis_url,
            "WFMON_STATE_DIR": str(state),
        }
        self.log = state / f"worker-{time.monotonic_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [WFMON, "worker", *extra], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while "Ctrl-C to stop" not in self.log.read_text():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def kill(self) -> None:
        stop_pid(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        stop_pid(self.proc.pid, signal.SIGTERM)
        self.proc.wait()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def execution_row(db: Database, ref: ExecutionRef) -> dict[str, Any] | None:
    with db.as_system() as conn:
        return conn.execute(
            """
            SELECT e.id, e.history_sync_status, e.sync_lease_owner, e.history_event_count,
                   (SELECT count(*) FROM component_executions c
                    WHERE c.workflow_execution_id = e.id) AS components
            FROM workflow_executions e
            WHERE temporal_workflow_id = %s AND temporal_run_id = %s
            """,
            (ref.workflow_id, ref.run_id),
        ).fetchone()


def run_wide_workflow(address: str, nodes: int) -> ExecutionRef:
    definition = WorkflowDefinition.model_validate(
        {
            "id": "wf-wide",
            "name": "wide",
            "version": 1,
            "nodes": [
                {"id": f"n{i:03d}", "component": "transform", "config": {"set": {"i": i}}}
                for i in range(nodes)
            ],
            "edges": [],
        }
    )

    async def go() -> ExecutionRef:
        client = await Client.connect(address)
        handle = await start_builder_run(client, definition, None)
        await handle.result()
        return ExecutionRef(client.namespace, handle.id, handle.result_run_id or "")

    return asyncio.run(go())


def record(address: str, db: Database, ref: ExecutionRef) -> None:
    async def go() -> None:
        client = await Client.connect(address)
        found = [d for d in await discover(client) if d.ref == ref]
        record_discovered(db, found)

    asyncio.run(go())


def record_all(address: str, db: Database, refs: list[ExecutionRef]) -> None:
    async def go() -> None:
        client = await Client.connect(address)
        wanted = set(refs)
        record_discovered(db, [d for d in await discover(client) if d.ref in wanted])

    asyncio.run(go())


async def terminate_coordinator(client: Client, reason: str) -> None:
    """Terminate the namespace's coordinator, if one runs (the next request starts one)."""
    existing = client.get_workflow_handle(coordinator_workflow_id(client.namespace))
    with contextlib.suppress(RPCError):
        await existing.terminate(reason)


def signal_sync(address: str, ref: ExecutionRef) -> None:
    async def go() -> None:
        await request_sync(await Client.connect(address), ref)

    asyncio.run(go())


def test_killed_worker_mid_sync_leaves_no_duplicates_and_no_lease(
    private_services: tuple[EmbeddedServices, Endpoints],
) -> None:
    services, endpoints = private_services
    worker = WorkerProcess(endpoints, services.state_dir)
    try:
        ref = run_wide_workflow(endpoints.temporal_address, nodes=40)
        with (
            Database(endpoints.database_url) as db,
            psycopg.connect(endpoints.database_url) as blocker,
        ):
            record(endpoints.temporal_address, db, ref)  # as discovery does: row first
            # Hold the sync inside its write transaction: component rows cannot be written
            # until this lock goes, so the kill below lands mid-sync, deterministically.
            blocker.execute("SET ROLE wfmon_system")  # the login role itself may touch nothing
            blocker.execute("LOCK TABLE component_executions IN EXCLUSIVE MODE")
            signal_sync(endpoints.temporal_address, ref)
            leased = wait_for(
                lambda: (row := execution_row(db, ref)) and row["sync_lease_owner"] and row,
                30,
                "the sync to take its lease",
            )
            assert leased["history_sync_status"] == "pending"
            time.sleep(1)  # the history is fetched; the write waits for the lock
            worker.kill()
            blocker.rollback()
            after_kill = execution_row(db, ref)
            assert after_kill is not None
            assert after_kill["components"] == 0, "a reader never sees half a sync"
            assert after_kill["history_sync_status"] == "pending"
            assert after_kill["sync_lease_owner"] is not None, "the dead worker's lease remains"

            worker = WorkerProcess(endpoints, services.state_dir)
            synced = wait_for(
                lambda: (
                    (row := execution_row(db, ref))
                    and row["history_sync_status"] == "synced"
                    and row
                ),
                90,
                "the retried sync to complete after the worker restarted",
            )
        assert synced["components"] == 40
        assert synced["sync_lease_owner"] is None
        assert synced["history_event_count"] > 40 * 3
    finally:
        worker.stop()


def test_temporal_restart_loses_no_sync_request(
    private_services: tuple[EmbeddedServices, Endpoints],
) -> None:
    services, endpoints = private_services
    worker = WorkerProcess(endpoints, services.state_dir)
    ref = run_wide_workflow(endpoints.temporal_address, nodes=3)
    # No sync worker while the request waits, so it can only live in Temporal's state.
    worker.stop()
    signal_sync(endpoints.temporal_address, ref)

    pid = {s.service: s.pid for s in services.status()}[Service.TEMPORAL]
    temporal.stop(pid)
    assert services.up() == endpoints, "Temporal restarts on its recorded port"

    worker = WorkerProcess(endpoints, services.state_dir)
    try:
        with Database(endpoints.database_url) as db:
            synced = wait_for(
                lambda: (
                    (row := execution_row(db, ref))
                    and row["history_sync_status"] == "synced"
                    and row
                ),
                60,
                "the request queued before the restart to be synced",
            )
        assert synced["components"] == 3
    finally:
        worker.stop()


def test_coordinator_continues_as_new_and_carries_its_work(
    private_services: tuple[EmbeddedServices, Endpoints],
) -> None:
    services, endpoints = private_services
    worker = WorkerProcess(endpoints, services.state_dir)
    try:
        refs = [run_wide_workflow(endpoints.temporal_address, nodes=1) for _ in range(5)]

        async def go() -> tuple[str, str, Any]:
            client = await Client.connect(endpoints.temporal_address)
            await terminate_coordinator(client, "restart with a small continue-as-new threshold")
            handle = await coordinator(
                client,
                config=CoordinatorConfig(batch_size=1, batches_before_continue_as_new=2),
            )
            first_run = (await handle.describe()).run_id
            await handle.signal(SyncCoordinatorWorkflow.request_syncs, refs)
            latest = client.get_workflow_handle(handle.id)
            deadline = time.monotonic() + 90
            while True:
                try:
                    state = await latest.query(SyncCoordinatorWorkflow.state)
                except RPCError:  # a query can time out while the run continues-as-new
                    state = None
                done = state is not None and state.completed_syncs == len(refs)
                if done or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            return first_run, (await latest.describe()).run_id, state

        first_run, last_run, state = asyncio.run(go())
        assert state is not None and state.completed_syncs == 5, state
        assert last_run != first_run, "the coordinator continued as new"
        assert not state.queued and not state.in_flight
        # A coordinator loop that spins fails its workflow task as a deadlock; the SDK
        # retries the task, so the sync can still finish: the worker log tells.
        assert "Failing workflow task" not in worker.log.read_text()
    finally:
        worker.stop()

        # Its config (one execution per batch, continue-as-new every 2 batches) is carried
        # across continue-as-new: the later tests of this module would join this
        # coordinator and sync one execution per child workflow (the 1,000-execution test
        # then needed more than its whole wait). They start a default one instead.
        async def stop_coordinator() -> None:
            client = await Client.connect(endpoints.temporal_address)
            await terminate_coordinator(client, "the continue-as-new test is over")

        asyncio.run(stop_coordinator())


def test_sync_only_workers_share_the_sync_work(
    private_services: tuple[EmbeddedServices, Endpoints],
) -> None:
    """Scaling out: a builder-only worker runs workflows, two ``--sync-only`` workers sync
    them; every execution is synced once, whichever process took it."""
    services, endpoints = private_services
    builder = WorkerProcess(endpoints, services.state_dir, "--no-sync")
    syncers = [WorkerProcess(endpoints, services.state_dir, "--sync-only") for _ in range(2)]
    try:
        assert "sync only" in syncers[0].log.read_text()
        refs = [run_wide_workflow(endpoints.temporal_address, nodes=3) for _ in range(6)]
        with Database(endpoints.database_url) as db:
            for ref in refs:
                signal_sync(endpoints.temporal_address, ref)
            for ref in refs:
                synced = wait_for(
                    lambda ref=ref: (
                        (row := execution_row(db, ref))
                        and row["history_sync_status"] == "synced"
                        and row
                    ),
                    60,
                    f"{ref.workflow_id} to be synced by a sync-only worker",
                )
                assert synced["components"] == 3 and synced["sync_lease_owner"] is None
    finally:
        for w in (builder, *syncers):
            w.stop()


def run_many_workflows(address: str, count: int, nodes: int) -> list[ExecutionRef]:
    """``count`` finished builder executions of ``nodes`` transform nodes each."""
    definition = WorkflowDefinition.model_validate(
        {
            "id": "wf-many",
            "name": "many",
            "version": 1,
            "nodes": [
                {"id": f"n{i}", "component": "transform", "config": {"set": {"i": i}}}
                for i in range(nodes)
            ],
            "edges": [],
        }
    )

    async def go() -> list[ExecutionRef]:
        client = await Client.connect(address)
        gate = asyncio.Semaphore(50)

        async def one() -> ExecutionRef:
            async with gate:
                handle = await start_builder_run(client, definition, None)
                await handle.result()
                return ExecutionRef(client.namespace, handle.id, handle.result_run_id or "")

        return list(await asyncio.gather(*(one() for _ in range(count))))

    return asyncio.run(go())


def sync_progress(endpoints: Endpoints, workflow_ids: list[str]) -> dict[str, int] | None:
    """Counts over the executions, read on a fresh connection (None while the database is
    down): synced, leased, component rows, and duplicated component rows."""
    try:
        with psycopg.connect(endpoints.database_url, connect_timeout=2) as conn:
            conn.execute("SET ROLE wfmon_system")
            row = conn.execute(
                """
                SELECT count(*) FILTER (WHERE e.history_sync_status = 'synced') AS synced,
                       count(*) FILTER (WHERE e.sync_lease_owner IS NOT NULL) AS leased,
                       count(*) AS executions,
                       (SELECT count(*) FROM component_executions c
                         JOIN workflow_executions x ON x.id = c.workflow_execution_id
                        WHERE x.temporal_workflow_id = ANY(%(ids)s)) AS components,
                       (SELECT count(*) FROM (
                           SELECT 1 FROM component_executions c
                             JOIN workflow_executions x ON x.id = c.workflow_execution_id
                            WHERE x.temporal_workflow_id = ANY(%(ids)s)
                            GROUP BY c.workflow_execution_id, c.node_id HAVING count(*) > 1
                        ) d) AS duplicated
                FROM workflow_executions e
                WHERE e.temporal_workflow_id = ANY(%(ids)s)
                """,
                {"ids": workflow_ids},
            ).fetchone()
    except psycopg.OperationalError:
        return None
    assert row is not None
    return dict(
        zip(("synced", "leased", "executions", "components", "duplicated"), row, strict=True)
    )


@pytest.mark.timeout(600)  # ~100 s alone: 1,000 executions are run, then synced
def test_postgres_restart_mid_sync_of_1000_executions_loses_and_duplicates_nothing(
    private_services: tuple[EmbeddedServices, Endpoints],
) -> None:
    services, endpoints = private_services
    count, nodes = 1000, 2
    builder = WorkerProcess(endpoints, services.state_dir, "--no-sync")
    try:
        refs = run_many_workflows(endpoints.temporal_address, count, nodes)
    finally:
        builder.stop()
    ids = [r.workflow_id for r in refs]
    with Database(endpoints.database_url) as db:
        record_all(endpoints.temporal_address, db, refs)  # as discovery does: rows first

    syncer = WorkerProcess(endpoints, services.state_dir, "--sync-only")
    restarted_at: dict[str, int] | None = None
    try:

        async def request_all() -> None:
            client = await Client.connect(endpoints.temporal_address)
            handle = await coordinator(client)
            await handle.signal(SyncCoordinatorWorkflow.request_syncs, refs)

        asyncio.run(request_all())
        # Restart PostgreSQL once some, but not all, executions are synced.
        progress = wait_for(
            lambda: (p := sync_progress(endpoints, ids)) and p["synced"] >= 20 and p,
            120,
            "the sync to start",
        )
        assert progress["synced"] < count, "the restart must land mid-sync"
        pid = {s.service: s.pid for s in services.status()}[Service.POSTGRES]
        postgres.stop(pid)
        restarted_at = progress
        assert services.up() == endpoints, "PostgreSQL restarts on its recorded port"

        final = wait_for(
            lambda: (p := sync_progress(endpoints, ids)) and p["synced"] == count and p,
            240,
            "every execution to be synced after the restart",
        )
    finally:
        syncer.stop()
    assert restarted_at is not None and restarted_at["synced"] < count
    assert final == {
        "synced": count,
        "leased": 0,
        "executions": count,
        "components": count * nodes,
        "duplicated": 0,
    }, final
