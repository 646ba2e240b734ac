"""Cache-aside reads, sync requests under RLS, deduplication, live executions, discovery."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from temporalio.client import WorkflowHandle

from tests.sync.conftest import SyncHarness, WorkflowOwner
from tests.sync.test_sync import ref_of, run_builder
from wfmon.db import Database
from wfmon.db.details import find_execution
from wfmon.model import WorkflowDefinition
from wfmon.runtime import start_builder_run
from wfmon.sync.discovery import discover, record_discovered
from wfmon.sync.messages import SYNC_TASK_QUEUE, ExecutionRef, SyncOutcome
from wfmon.sync.service import ExecutionNotFound, ExecutionService
from wfmon.sync.worker import sync_now


def auth(owner: WorkflowOwner) -> UUID:
    assert owner.user.auth_user_id is not None
    return owner.user.auth_user_id


def discovered_id(h: SyncHarness, db: Database, ref: ExecutionRef) -> UUID:
    """Record ``ref`` the way discovery does (row only, not synced) and return its id."""

    async def listing() -> None:
        found = [
            d
            for d in await discover(h.client, closed_after=datetime.now(UTC) - timedelta(minutes=5))
            if d.ref == ref
        ]
        assert found, "a closed execution is listed by visibility at once"
        record_discovered(db, found)

    h.run(listing())
    with db.as_system() as conn:
        row = find_execution(conn, ref.namespace, ref.workflow_id, ref.run_id)
    assert row is not None and row["history_sync_status"] == "pending"
    return UUID(str(row["id"]))


def test_details_sync_once_then_come_from_the_database(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    h = sync_harness
    service = ExecutionService(db, h.client)
    ref = ref_of(h, h.run(run_builder(h, alice, "retry")))
    execution_id = discovered_id(h, db, ref)

    first = h.run(service.get_execution_details(execution_id, auth(alice)))
    assert first.synced_now and first.sync_error is None
    assert first.execution["history_sync_status"] == "synced"
    assert [c["node_id"] for c in first.components] == ["flaky"]
    assert first.components[0]["retry_count"] == 1

    second = h.run(service.get_execution_details(execution_id, auth(alice)))
    assert not second.synced_now, "closed + synced never goes back to Temporal"
    assert second.components == first.components

    status = h.run(service.check_sync_status(execution_id, auth(alice)))
    assert status.history_sync_status == "synced" and not status.stale


def test_cached_details_follow_every_write_to_the_execution(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    """The in-process cache is keyed by the row version: a re-sync (which rewrites the
    component rows and the execution row in one transaction) is seen at once."""
    h = sync_harness
    service = ExecutionService(db, h.client)
    ref = ref_of(h, h.run(run_builder(h, alice, "retry")))
    execution_id = discovered_id(h, db, ref)
    h.run(service.get_execution_details(execution_id, auth(alice)))
    cached = h.run(service.get_execution_details(execution_id, auth(alice)))
    assert not cached.synced_now and cached.components[0]["output_data"] != {"rewritten": 1}

    with db.as_system() as conn:  # what a later sync writes, in one transaction
        conn.execute(
            "UPDATE component_executions SET output_data = '{\"rewritten\": 1}' "
            "WHERE workflow_execution_id = %s",
            (execution_id,),
        )
        conn.execute(
            "UPDATE workflow_executions SET history_synced_at = history_synced_at WHERE id = %s",
            (execution_id,),
        )
    fresh = h.run(service.get_execution_details(execution_id, auth(alice)))
    assert not fresh.synced_now
    assert fresh.components[0]["output_data"] == {"rewritten": 1}


def test_another_user_cannot_see_or_sync(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner, bob: WorkflowOwner
) -> None:
    h = sync_harness
    service = ExecutionService(db, h.client)
    ref = ref_of(h, h.run(run_builder(h, alice, "success")))
    execution_id = discovered_id(h, db, ref)
    for call in (
        service.check_sync_status(execution_id, auth(bob)),
        service.request_sync(execution_id, auth(bob), immediate=True),
        service.request_sync(execution_id, auth(bob), immediate=False),
        service.get_execution_details(execution_id, auth(bob)),
    ):
        with pytest.raises(ExecutionNotFound):
            h.run(call)
    # Nothing was synced on bob's behalf.
    with db.as_system() as conn:
        row = find_execution(conn, ref.namespace, ref.workflow_id, ref.run_id)
    assert row is not None and row["history_sync_status"] == "pending"


def test_two_concurrent_immediate_requests_run_one_sync(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    h = sync_harness
    ref = ref_of(h, h.run(run_builder(h, alice, "success")))
    since = datetime.now(UTC)

    async def both() -> list[Any]:
        return list(await asyncio.gather(sync_now(h.client, ref), sync_now(h.client, ref)))

    first, second = h.run(both())
    assert first.outcome is second.outcome is SyncOutcome.SYNCED
    assert first == second, "the second request joined the first sync"

    async def batches() -> int:
        """Batch workflows started since that carried this execution (another test's live
        re-syncs may start batches in the same window: they do not count)."""
        query = f"WorkflowType = 'WfmonSyncBatch' AND StartTime > '{since.isoformat()}'"
        carried = 0
        async for w in h.client.list_workflows(query):
            history = await h.client.get_workflow_handle(w.id, run_id=w.run_id).fetch_history()
            started = history.events[0].workflow_execution_started_event_attributes
            carried += any(ref.run_id.encode() in p.data for p in started.input.payloads)
        return carried

    assert h.run(batches()) == 1


def test_running_execution_shows_pending_components_then_final_state(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    h = sync_harness
    slow = WorkflowDefinition.model_validate(
        {
            "id": "wf-slow",
            "name": "slow",
            "version": 1,
            "nodes": [
                {"id": "wait", "component": "sleep", "config": {"seconds": 3}},
                {"id": "after", "component": "transform", "config": {"set": {"done": True}}},
            ],
            "edges": [{"source": "wait", "target": "after"}],
        }
    )
    handle: WorkflowHandle[Any, Any] = h.run(
        start_builder_run(
            h.client, slow, None, context=alice.run_context(), task_queue=h.builder_queue
        )
    )
    time.sleep(0.5)
    ref = ExecutionRef(h.client.namespace, handle.id, handle.result_run_id or "")
    live = h.run(sync_now(h.client, ref))
    assert live.outcome is SyncOutcome.SYNCED and live.still_running
    with db.as_user(auth(alice)) as conn:
        row = find_execution(conn, ref.namespace, ref.workflow_id, ref.run_id)
        assert row is not None and row["status"] == "running"
        comps = conn.execute(
            "SELECT node_id, status FROM component_executions WHERE workflow_execution_id = %s",
            (row["id"],),
        ).fetchall()
    assert {(c["node_id"], c["status"]) for c in comps} == {("wait", "running")}

    h.run(handle.result())
    service = ExecutionService(db, h.client, stale_after=timedelta(seconds=0))
    details = h.run(service.get_execution_details(row["id"], auth(alice)))
    # Either the coordinator's live re-sync or this read's immediate sync brought it up to date.
    assert details.execution["status"] == "completed"
    assert {(c["node_id"], c["status"]) for c in details.components} == {
        ("wait", "completed"),
        ("after", "completed"),
    }


def test_discovery_lists_closed_executions_in_a_window(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    h = sync_harness
    before = datetime.now(UTC) - timedelta(seconds=1)

    async def three() -> list[Any]:
        return list(await asyncio.gather(*(run_builder(h, alice, "success") for _ in range(3))))

    refs = {ref_of(h, x) for x in h.run(three())}

    async def listing() -> list[Any]:
        return await discover(h.client, closed_after=before, exclude_task_queues=[SYNC_TASK_QUEUE])

    found = h.run(listing())
    assert refs <= {d.ref for d in found}
    assert all(d.task_queue != SYNC_TASK_QUEUE for d in found)
    closes = [d.closed_at for d in found]
    assert closes == sorted(closes), "sorted by close time (the dev server has no ORDER BY)"
    mine = [d for d in found if d.ref in refs]
    assert all(d.user_id == str(alice.user.id) for d in mine)
    record_discovered(db, mine)
    with db.as_user(auth(alice)) as conn:
        for ref in refs:
            row = find_execution(conn, ref.namespace, ref.workflow_id, ref.run_id)
            assert row is not None and row["project_id"] == alice.project.id
