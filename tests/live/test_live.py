"""Live push end to end: a sync write -> NOTIFY at commit -> the app's one LISTEN
connection -> the open streams of the execution's owner, and nobody else's."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest

from tests.live.conftest import (
    LiveWorld,
    SseStream,
    execution_id_of,
    serve_live_app,
    wait_until,
)
from wfmon.api.live import hub_of
from wfmon.attempts.postgres import PostgresAttemptSink
from wfmon.attempts.records import AttemptOutcome, AttemptRecord
from wfmon.db import notify
from wfmon.db.executions import upsert_execution
from wfmon.db.locks import libpq_url
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.db.sync import acquire_leases, renew_leases
from wfmon.model import ComponentStatus, ExecutionStatus
from wfmon.testing import WorkflowOwner, execution_row, write_execution


def _paths(e: uuid.UUID, owner: WorkflowOwner) -> list[str]:
    return [
        f"/api/executions/{e}/stream",
        f"/api/workflows/{owner.workflow.id}/executions/stream",
        f"/api/projects/{owner.project.id}/attention/stream",
    ]


def _closed(row: ExecutionRow, status: ExecutionStatus) -> ExecutionRow:
    now = datetime.now(UTC)
    ms = int((now - row.started_at).total_seconds() * 1000)
    return replace(row, status=status, closed_at=now, duration_ms=ms)


def _open(live: LiveWorld, who: WorkflowOwner, paths: list[str]) -> list[SseStream]:
    streams = [live.stream(who, p) for p in paths]
    for s in streams:
        assert s.status == 200, s.body
        s.expect("ready")
    return streams


def test_a_sync_write_reaches_the_open_streams_once_at_commit(live: LiveWorld) -> None:
    a = live.alice
    row = execution_row(a, status=ExecutionStatus.RUNNING)
    e = write_execution(live.db, row)
    streams = _open(live, a, _paths(e, a))
    try:
        assert streams[0].response.getheader("content-type", "").startswith("text/event-stream")
        # One sync of one execution (execution upsert, component rows, synced mark, in one
        # transaction): one event per stream, duplicates dropped at commit.
        component = ComponentExecutionRow("fetch", 5, ComponentStatus.RUNNING)
        write_execution(live.db, row, components=[component])
        for s in streams:
            frame = s.expect("update")
            assert execution_id_of(frame) == e
            assert set(frame.data) == {"kind", "execution_id"}  # ids only
        streams[0].quiet(0.3)

        # A rolled-back write tells nobody.
        with pytest.raises(RuntimeError), live.db.as_system() as conn:
            upsert_execution(conn, _closed(row, ExecutionStatus.FAILED))
            raise RuntimeError("roll back")
        # A payload that is not an event is ignored, and the hub keeps listening; a sync
        # lease taken and renewed changes nothing a page shows, and tells nobody.
        with live.db.as_system() as conn:
            notify.notify_raw(conn, "not an event")
            runs = [(row.temporal_workflow_id, row.temporal_run_id)]
            assert not acquire_leases(conn, row.temporal_namespace, runs, "live-test", 30)
            assert renew_leases(conn, "live-test", 60) == 1
        streams[1].quiet(0.3)

        write_execution(live.db, _closed(row, ExecutionStatus.COMPLETED))
        for s in streams:
            assert execution_id_of(s.expect("update")) == e
    finally:
        for s in streams:
            s.close()


def test_a_stream_only_tells_its_user_about_their_own_executions(live: LiveWorld) -> None:
    a, b = live.alice, live.bob
    e = write_execution(live.db, execution_row(a, status=ExecutionStatus.RUNNING))
    # Bob cannot open a stream on Alice's execution or project (404, as every unseen
    # one), nor without a token (401).
    for path in (_paths(e, a)[0], _paths(e, a)[2]):
        s = live.stream(b, path)
        assert s.status == 404 and "not found" in s.body["message"]
    s = SseStream(live.url, _paths(e, a)[0], "")
    assert s.status == 401
    # Alice's workflow is public: Bob may open its history stream, and sees nothing of
    # Alice's runs on it.
    bobs = _open(live, b, [_paths(e, a)[1], *_paths(e, b)[1:]])
    alices = _open(live, a, _paths(e, a))
    try:
        write_execution(live.db, _closed(execution_row(a), ExecutionStatus.FAILED))
        write_execution(live.db, execution_row(a, status=ExecutionStatus.RUNNING))
        for s in alices[1:]:
            s.expect("update")
            s.expect("update")
        for s in bobs:
            s.quiet(0.3)
        # Bob's own run reaches Bob's streams (so the silence above means something).
        mine = write_execution(live.db, execution_row(b))
        for s in bobs[1:]:
            assert execution_id_of(s.expect("update")) == mine
        bobs[0].quiet(0.2)
    finally:
        for s in bobs + alices:
            s.close()


def test_one_listen_connection_however_many_streams(live: LiveWorld) -> None:
    a = live.alice
    e = write_execution(live.db, execution_row(a, status=ExecutionStatus.RUNNING))
    before = live.hub.subscriptions
    streams = _open(live, a, _paths(e, a) * 20)
    try:
        assert live.hub.subscriptions == before + 60
        with live.db.as_system() as conn:
            assert notify.listener_count(conn) == 1
        write_execution(live.db, _closed(execution_row(a), ExecutionStatus.FAILED))
        write_execution(live.db, execution_row(a, status=ExecutionStatus.RUNNING))
        t0 = time.monotonic()
        write_execution(live.db, _closed(execution_row(a), ExecutionStatus.COMPLETED))
        for s in streams[1::3] + streams[2::3]:  # workflow and project streams: all three
            for _ in range(3):
                s.expect("update")
        assert time.monotonic() - t0 < 10
    finally:
        for s in streams:
            s.close()
    # A client that goes away is unsubscribed (the response notices the disconnect).
    wait_until(lambda: live.hub.subscriptions == before, what="streams to unsubscribe")
    with live.db.as_system() as conn:
        assert notify.listener_count(conn) == 1


def test_streams_end_when_the_listen_connection_drops_and_come_back(live: LiveWorld) -> None:
    a = live.alice
    row = execution_row(a, status=ExecutionStatus.RUNNING)
    e = write_execution(live.db, row)
    (s,) = _open(live, a, _paths(e, a)[:1])
    connects = live.hub.connects
    # The web login may end its own backends: the same as the server dropping the link.
    with psycopg.connect(libpq_url(live.endpoints.web_database_url), autocommit=True) as conn:
        assert notify.terminate_listeners(conn) == 1
    end = s.expect("end")
    assert "dropped" in end.data["reason"]
    assert s.next(2) is None and s.ended.is_set()  # and the response closes
    # Until it listens again a new stream ends at once, saying why (the page polls).
    refused = live.stream(a, _paths(e, a)[0])
    assert refused.status == 200
    assert "reconnecting" in refused.expect("end").data["reason"]
    wait_until(lambda: live.hub.listening, what="the hub to reconnect")
    assert live.hub.connects == connects + 1
    (again,) = _open(live, a, _paths(e, a)[:1])
    try:
        write_execution(live.db, _closed(row, ExecutionStatus.COMPLETED))
        assert execution_id_of(again.expect("update")) == e
    finally:
        again.close()
    with live.db.as_system() as conn:
        assert notify.listener_count(conn) == 1


def test_shutdown_ends_open_streams(live: LiveWorld, web_db: object) -> None:
    server = serve_live_app(live.endpoints, web_db)  # type: ignore[arg-type]
    a = live.alice
    e = write_execution(live.db, execution_row(a, status=ExecutionStatus.RUNNING))
    s = SseStream(server.url, _paths(e, a)[0], live.token(a))
    assert s.status == 200
    s.expect("ready")
    t0 = time.monotonic()
    server.stop()
    assert s.expect("end").data["reason"] == "the server is shutting down"
    assert not server.thread.is_alive() and time.monotonic() - t0 < 5
    hub = hub_of(server.server.config.app)
    assert hub is not None and hub.subscriptions == 0


def test_the_recorder_login_hears_nothing(live: LiveWorld) -> None:
    """Any role that can connect may LISTEN; the recorder (whose URL users' own workers
    hold) cannot learn the channel's name, so it hears no one's executions."""
    recorder = psycopg.connect(libpq_url(live.endpoints.recorder_database_url), autocommit=True)
    try:
        for statement in (
            "SELECT wfmon_live_channel()",
            "SELECT channel FROM wfmon_live_channel_name",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                recorder.execute(statement)
        # The channel of 0520 and a guess hear nothing of a sync write the app hears.
        recorder.execute("LISTEN wfmon_live")
        recorder.execute("LISTEN wfmon_live_00000000000000000000000000000000")
        a = live.alice
        row = execution_row(a, status=ExecutionStatus.RUNNING)
        e = write_execution(live.db, row)
        (stream,) = _open(live, a, _paths(e, a)[:1])
        try:
            write_execution(live.db, _closed(row, ExecutionStatus.COMPLETED))
            assert execution_id_of(stream.expect("update")) == e
            assert list(recorder.notifies(timeout=0.5, stop_after=1)) == []
        finally:
            stream.close()
    finally:
        recorder.close()


def test_attempts_recorded_by_an_own_worker_reach_the_execution_page_without_a_sync(
    live: LiveWorld,
) -> None:
    """The insert-only recorder (users' own workers, wfmon.attempts) may read no execution;
    its attempts name the run by its Temporal ids (migrations/0600), which reach the streams
    open on that execution only: not the same user's other streams, nor another user's."""
    import asyncio

    a, b = live.alice, live.bob
    row = execution_row(a, status=ExecutionStatus.RUNNING)
    e = write_execution(live.db, row)
    other = write_execution(live.db, execution_row(a, status=ExecutionStatus.RUNNING))
    bobs = write_execution(live.db, execution_row(b, status=ExecutionStatus.RUNNING))
    mine, elsewhere, bob = (
        _open(live, a, _paths(e, a)[:1])[0],
        _open(live, a, _paths(other, a)[:1])[0],
        _open(live, b, _paths(bobs, b)[:1])[0],
    )
    sink = PostgresAttemptSink(live.endpoints.recorder_database_url)
    try:
        now = datetime.now(UTC)
        record = AttemptRecord(
            namespace=row.temporal_namespace,
            workflow_id=row.temporal_workflow_id,
            run_id=row.temporal_run_id,
            workflow_type=row.workflow_type,
            activity_id="charge",
            activity_type="charge",
            attempt=1,
            is_local=False,
            task_queue="own-workers",
            scheduled_at=now,
            started_at=now,
            ended_at=now,
            outcome=AttemptOutcome.FAILED,
            failure_type="CardDeclined",
            failure_message="declined",
        )
        asyncio.run(sink.write([record]))
        assert execution_id_of(mine.expect("update")) == e
        elsewhere.quiet(0.3)
        bob.quiet(0.1)
    finally:
        sink.close()
        for s in (mine, elsewhere, bob):
            s.close()
