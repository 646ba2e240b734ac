"""Sync end to end: builder executions on the real dev server, synced into real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from typing import Any

import pytest
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import ActivityEnvironment

from tests.sync.conftest import SyncHarness, WorkflowOwner
from wfmon.db import Database
from wfmon.db.sync import acquire_leases
from wfmon.history import HistoryReader, read_history
from wfmon.runtime.client import start_builder_run
from wfmon.sync.activities import SyncActivities, _Busy, _Fetched, _WriteJob
from wfmon.sync.batch import sync_many
from wfmon.sync.discovery import discover, record_discovered
from wfmon.sync.messages import ExecutionRef, SyncFailures, SyncOutcome, SyncResult
from wfmon.sync.worker import sync_many_now, sync_now
from wfmon.testing import definition


async def run_builder(
    h: SyncHarness, owner: WorkflowOwner | None, kind: str
) -> WorkflowHandle[Any, Any]:
    handle = await h.start_run(owner, kind)
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    return handle


def ref_of(h: SyncHarness, handle: WorkflowHandle[Any, Any]) -> ExecutionRef:
    assert handle.result_run_id is not None
    return ExecutionRef(h.client.namespace, handle.id, handle.result_run_id)


def db_components(
    db: Database, owner: WorkflowOwner, ref: ExecutionRef
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    assert owner.user.auth_user_id is not None
    with db.as_user(owner.user.auth_user_id) as conn:
        execution = conn.execute(
            "SELECT * FROM workflow_executions "
            "WHERE temporal_workflow_id = %s AND temporal_run_id = %s",
            (ref.workflow_id, ref.run_id),
        ).fetchone()
        assert execution is not None, "the owner sees the synced execution"
        rows = conn.execute(
            "SELECT * FROM component_executions "
            "WHERE workflow_execution_id = %s ORDER BY scheduled_event_id",
            (execution["id"],),
        ).fetchall()
    return execution, rows


def test_sync_of_200_mixed_executions_matches_direct_history_reads(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    h = sync_harness
    kinds = ["success"] * 160 + ["retry"] * 20 + ["fail"] * 20

    async def scenario() -> tuple[list[ExecutionRef], list[SyncResult]]:
        handles = await asyncio.gather(*(run_builder(h, alice, kind) for kind in kinds))
        refs = [ref_of(h, handle) for handle in handles]
        report = await sync_many(h.client, refs)
        assert not report.failed, report.failed[:3]
        return refs, await sync_many_now(h.client, refs[:3])  # a second pass: no duplicates

    refs, again = h.run(scenario(), timeout=300)
    assert all(r.outcome is SyncOutcome.SYNCED for r in again)

    async def histories() -> list[Any]:
        return [
            await h.client.get_workflow_handle(r.workflow_id, run_id=r.run_id).fetch_history()
            for r in refs
        ]

    statuses = {"completed": 0, "failed": 0}
    for ref, history in zip(refs, h.run(histories()), strict=True):
        direct = read_history(history)
        execution, rows = db_components(db, alice, ref)
        statuses[execution["status"]] += 1
        assert execution["status"] == direct.execution.status.value
        assert execution["history_sync_status"] == "synced"
        assert execution["sync_lease_owner"] is None
        assert execution["project_id"] == alice.project.id
        assert execution["workflow_id"] == alice.workflow.id
        assert execution["workflow_version"] == 1
        assert execution["history_event_count"] == len(history.events)
        stored = History.FromString(execution["temporal_history_proto"])
        assert list(stored.events) == list(history.events), "the history as Temporal sent it"
        expected = [
            (
                c.node_id,
                c.status.value,
                c.retry_count,
                c.is_expected_retry,
                c.error_type,
                c.temporal_attempt,
                c.output_data,
                c.input_data,
                c.duration_ms,
            )
            for c in direct.components
        ]
        got = [
            (
                r["node_id"],
                r["status"],
                r["retry_count"],
                r["is_expected_retry"],
                r["error_type"],
                r["temporal_attempt"],
                r["output_data"],
                r["input_data"],
                r["duration_ms"],
            )
            for r in rows
        ]
        assert got == expected
    assert statuses == {"completed": 180, "failed": 20}


def test_second_sync_rewrites_without_duplicates(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    h = sync_harness
    handle = h.run(run_builder(h, alice, "retry"))
    ref = ref_of(h, handle)
    first = h.run(sync_now(h.client, ref))
    _, rows_first = db_components(db, alice, ref)
    second = h.run(sync_now(h.client, ref))
    _, rows_second = db_components(db, alice, ref)
    assert first.outcome is second.outcome is SyncOutcome.SYNCED
    assert len(rows_first) == len(rows_second) == 1
    assert rows_first[0]["retry_count"] == 1 and rows_first[0]["is_expected_retry"] is True


def test_foreign_workflow_goes_to_the_discovered_project(
    sync_harness: SyncHarness, db: Database
) -> None:
    h = sync_harness
    handle = h.run(run_builder(h, None, "success"))
    ref = ref_of(h, handle)
    assert h.run(sync_now(h.client, ref)).outcome is SyncOutcome.SYNCED
    with db.as_system() as conn:
        row = conn.execute(
            "SELECT e.project_id, w.name FROM workflow_executions e "
            "JOIN workflows w ON w.id = e.workflow_id WHERE e.temporal_workflow_id = %s",
            (ref.workflow_id,),
        ).fetchone()
    assert row is not None
    assert str(row["project_id"]) == "00000000-0000-0000-0000-000000000002"
    assert row["name"].endswith("/WfmonBuilderWorkflow")


def test_unknown_execution_is_reported_not_found(sync_harness: SyncHarness) -> None:
    h = sync_harness
    ref = ExecutionRef(h.client.namespace, f"missing-{uuid.uuid4()}", str(uuid.uuid4()))
    result = h.run(sync_now(h.client, ref))
    assert result.outcome is SyncOutcome.NOT_FOUND
    assert "does not exist" in (result.error or "")


def test_an_older_snapshot_never_replaces_a_newer_one(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    """A slow sync whose lease lapsed writes after a newer one: the newer data stays."""
    h = sync_harness
    ref = ref_of(h, h.run(run_builder(h, alice, "success")))
    assert h.run(sync_now(h.client, ref)).outcome is SyncOutcome.SYNCED
    execution, rows = db_components(db, alice, ref)

    history = h.run(
        h.client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id).fetch_history()
    )
    reader = HistoryReader()
    reader.feed(history.events[:8])  # the run as an early sync saw it
    older = _Fetched(reader, [], b"", None)
    activities = SyncActivities(h.client, db)
    activities._write(_WriteJob(ref, "a-slow-syncer", reader.finish(), older))

    after, rows_after = db_components(db, alice, ref)
    assert after["history_event_count"] == execution["history_event_count"] == len(history.events)
    assert after["status"] == "completed"
    assert rows_after == rows


def test_a_failed_sync_is_recorded_on_the_row_for_the_user(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    h = sync_harness
    ref = ref_of(h, h.run(run_builder(h, alice, "success")))
    assert h.run(sync_now(h.client, ref)).outcome is SyncOutcome.SYNCED
    failure = SyncResult(ref, SyncOutcome.FAILED, error="Temporal: unavailable")
    h.run(ActivityEnvironment().run(SyncActivities(h.client, db).record_sync_failures,
                                    SyncFailures([failure])))  # fmt: skip
    execution, _ = db_components(db, alice, ref)
    assert execution["history_sync_status"] == "failed"
    assert execution["history_sync_error"] == "Temporal: unavailable"
    assert execution["sync_lease_owner"] is None


def _job(h: SyncHarness, ref: ExecutionRef, owner: str) -> _WriteJob:
    """The execution fetched and read as the sync activity does it."""
    history = h.run(
        h.client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id).fetch_history()
    )
    reader = HistoryReader()
    reader.feed(history.events)
    proto = History(events=history.events).SerializeToString()
    return _WriteJob(ref, owner, reader.finish(), _Fetched(reader, [], proto, None))


def _synced_row(db: Database, ref: ExecutionRef) -> dict[str, Any] | None:
    with db.as_system() as conn:
        return conn.execute(
            "SELECT e.history_sync_status, e.history_sync_error, e.sync_lease_owner, "
            "  e.history_event_count, "
            "  d.terms, (SELECT count(*) FROM execution_search_terms t "
            "            WHERE t.execution_id = e.id) AS term_rows "
            "FROM workflow_executions e "
            "LEFT JOIN execution_search_documents d ON d.execution_id = e.id "
            "WHERE e.temporal_workflow_id = %s AND e.temporal_run_id = %s",
            (ref.workflow_id, ref.run_id),
        ).fetchone()


def test_a_group_write_commits_each_execution_whole(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner
) -> None:
    """Several executions in one transaction: a busy one is left alone, one whose write
    fails takes only itself down, and every written one has its search document."""
    h = sync_harness
    refs = [ref_of(h, h.run(run_builder(h, alice, "success"))) for _ in range(5)]
    busy = refs[1]
    assert h.run(sync_now(h.client, busy)).outcome is SyncOutcome.SYNCED
    with db.as_system() as conn:
        assert acquire_leases(conn, busy.namespace, [(busy.workflow_id, busy.run_id)],
                              "another-syncer", 60) == set()  # fmt: skip
    activities = SyncActivities(h.client, db)

    jobs = [_job(h, r, "group-test") for r in refs]
    outcomes = activities._write_group(jobs[:3])
    assert isinstance(outcomes[1], _Busy)
    assert outcomes[0] == outcomes[2] == len(jobs[0].report.components) > 0
    for ref in (refs[0], refs[2]):
        row = _synced_row(db, ref)
        assert row is not None and row["history_sync_status"] == "synced"
        assert row["sync_lease_owner"] is None
        assert row["terms"] and row["term_rows"] == len(row["terms"])
    untouched = _synced_row(db, busy)
    assert untouched is not None and untouched["sync_lease_owner"] == "another-syncer"

    # A write that PostgreSQL refuses (NUL in a text column): the group falls back to one
    # transaction per execution, so the other two are written and only it fails.
    bad = dataclasses.replace(
        jobs[3],
        report=dataclasses.replace(
            jobs[3].report,
            execution=dataclasses.replace(jobs[3].report.execution, error_message="nul \x00"),
        ),
    )
    again = _job(h, refs[0], "group-test")
    outcomes = activities._write_group([again, bad, jobs[4]])
    assert isinstance(outcomes[1], Exception) and not isinstance(outcomes[1], _Busy)
    assert outcomes[0] == outcomes[2] == len(jobs[0].report.components)
    assert _synced_row(db, refs[3]) is None, "nothing of the failed execution was written"
    written = _synced_row(db, refs[4])
    assert written is not None and written["history_sync_status"] == "synced"


@pytest.mark.parametrize(
    "bad_input",
    [
        {"n": 1, "note": "secret-ish \x00 value"},
        # Python's JSON writes NaN, which jsonb refuses. The sync's fast JSON writer (orjson)
        # would store it as null: the payload decoder sends such values to json.dumps.
        {"n": 1, "note": "secret-ish", "ratio": float("nan")},
    ],
    ids=["nul", "nan"],
)
def test_an_execution_postgresql_refuses_fails_alone_with_a_clear_error(
    sync_harness: SyncHarness, db: Database, alice: WorkflowOwner, bad_input: dict[str, Any]
) -> None:
    """A payload PostgreSQL cannot store (``\\u0000`` or NaN: Temporal carries both, but
    jsonb refuses them) fails that execution's sync at once, with an error that names
    the problem and none of the data; the execution synced in the same batch is written."""
    h = sync_harness

    async def run(workflow_input: Any) -> WorkflowHandle[Any, Any]:
        handle = await start_builder_run(
            h.client, definition("success"), workflow_input,
            context=alice.run_context(), task_queue=h.builder_queue,
        )  # fmt: skip
        await handle.result()
        return handle

    good = ref_of(h, h.run(run({"n": 1})))
    bad = ref_of(h, h.run(run(bad_input)))

    async def record_row() -> None:
        # As discovery does before any sync: the row first, so the failure has a home.
        for _ in range(40):
            found = [d for d in await discover(h.client) if d.ref == bad]
            if found:
                record_discovered(db, found)
                return
            await asyncio.sleep(0.25)  # visibility is eventually consistent
        raise AssertionError("discovery never listed the execution")

    h.run(record_row())

    async def sync_both() -> list[SyncResult]:
        # Before the fix the refused write failed the batch's activity, which Temporal
        # retried for minutes and then failed every execution of the batch.
        return await asyncio.wait_for(sync_many_now(h.client, [good, bad]), timeout=60)

    synced, refused = h.run(sync_both())
    assert synced.outcome is SyncOutcome.SYNCED
    assert refused.outcome is SyncOutcome.FAILED and not refused.retryable
    assert refused.error is not None and "PostgreSQL refused" in refused.error
    assert "secret-ish" not in refused.error
    row = _synced_row(db, bad)
    assert row is not None and row["history_sync_status"] == "failed"
    assert row["sync_lease_owner"] is None and row["history_sync_error"] == refused.error
    good_row = _synced_row(db, good)
    assert good_row is not None and good_row["history_sync_status"] == "synced"
