"""wfmon for people's own Temporal workers: ``interceptors=[wfmon.attempts.interceptor(dsn=...)]``.

A plain workflow (tests/attempts/own_greeting.py, no wfmon code in it) runs on a worker with
the interceptor; wfmon syncs it; every attempt shows on the execution page (API and HTML)
with the policy Temporal recorded and expected / unexpected marks. The interceptor never
fails an activity when the database is unreachable, and counts what it drops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest
from own_greeting import UNAVAILABLE, GreetingWorkflow, compose_greeting, send_postcard
from temporalio.worker import Worker

import wfmon.attempts
from tests.attempts.conftest import NAMESPACE, OwnWorld
from wfmon.cli import main
from wfmon.db import Database
from wfmon.db.namespaces import namespace_owner
from wfmon.dev.process import free_port
from wfmon.dev.services import Endpoints
from wfmon.sync.messages import ExecutionRef, SyncOutcome
from wfmon.sync.worker import sync_now
from wfmon.testing import make_owner


def get(world: OwnWorld, path: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(world.server.url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def run_greeting(world: OwnWorld) -> ExecutionRef:
    """Run the user's workflow to its end on the user's worker; its ref."""
    client = world.harness.client
    handle = await client.start_workflow(
        GreetingWorkflow.run,
        "World",
        id=f"greeting-{uuid.uuid4().hex[:8]}",
        task_queue=world.harness.task_queue,
    )
    assert await handle.result() == "Hello, World!"
    assert handle.result_run_id is not None
    return ExecutionRef(NAMESPACE, handle.id, handle.result_run_id)


@pytest.fixture(scope="module")
def synced(own_world: OwnWorld, db: Database) -> tuple[ExecutionRef, UUID]:
    """One run of the user's workflow, its attempts written and the execution synced."""
    h = own_world.harness

    async def scenario() -> ExecutionRef:
        ref = await run_greeting(own_world)
        # 3 attempts of compose_greeting and 2 of send_postcard, written in the background.
        for _ in range(100):
            if h.interceptor.stats().written >= 5:
                break
            await asyncio.sleep(0.05)
        result = await sync_now(h.client, ref)
        assert result.outcome is SyncOutcome.SYNCED, result.error
        return ref

    ref = h.run(scenario(), timeout=60)
    stats = h.interceptor.stats()
    assert (stats.written, stats.dropped, stats.write_failures) == (5, 0, 0)
    with db.as_user(own_world.carol.auth_user_id) as conn:
        row = conn.execute(
            "SELECT id FROM workflow_executions WHERE temporal_namespace = %s"
            " AND temporal_workflow_id = %s AND temporal_run_id = %s",
            (ref.namespace, ref.workflow_id, ref.run_id),
        ).fetchone()
    assert row is not None, "the namespace's owner sees the synced plain execution"
    return ref, row["id"]


def test_every_attempt_of_a_plain_workflow_is_on_its_execution_page(
    own_world: OwnWorld, synced: tuple[ExecutionRef, UUID]
) -> None:
    _, execution_id = synced
    bearer = {"Authorization": f"Bearer {own_world.token(own_world.carol)}"}
    status, body = get(own_world, f"/api/executions/{execution_id}", bearer)
    assert status == 200, body
    details = json.loads(body)
    assert details["execution"]["workflow_type"] == "GreetingWorkflow"
    cards = {c["activity_type"]: c for c in details["components"]}
    assert set(cards) == {"compose_greeting", "send_postcard"}

    compose = cards["compose_greeting"]
    assert compose["status"] == "completed" and compose["is_expected_retry"] is True
    # The policy is the one Temporal recorded when the activity was scheduled.
    assert compose["policy"]["recorded"]["maximum_attempts"] == 5
    assert compose["policy"]["max_attempts"] == 5
    assert compose["policy"]["sentence"] == (
        "fail after 5 attempts, waiting 100ms then x2 per retry, at most 2s"
    )
    assert compose["node_id"] == "1"  # the activity id workflow.execute_activity gave it
    tries = compose["attempts"]
    assert [(a["attempt"], a["outcome"], a["retried"], a["retry_expected"]) for a in tries] == [
        (1, "failed", True, True),
        (2, "failed", True, True),
        (3, "completed", False, None),
    ]
    # Recorded by the interceptor, not filled in from the last attempt.
    assert tries[0]["failure_message"] == f"{UNAVAILABLE} (attempt 1)"
    assert tries[1]["failure_message"] == f"{UNAVAILABLE} (attempt 2)"
    assert tries[0]["failure_type"] == "RuntimeError"
    assert tries[1]["label"] == "attempt 2 of 5"

    postcard = cards["send_postcard"]
    assert postcard["status"] == "failed" and postcard["is_expected_retry"] is False
    assert postcard["policy"]["recorded"]["maximum_attempts"] == 2
    assert [
        (a["attempt"], a["failure_type"], a["retried"], a["retry_expected"])
        for a in postcard["attempts"]
    ] == [(1, "PrinterJammed", True, False), (2, "PrinterJammed", False, None)]
    assert "using all 2 attempts" in postcard["attempts"][1]["explanation"]

    page = {"Cookie": f"wfmon_token={own_world.token(own_world.carol)}", "Accept": "text/html"}
    status, html = get(own_world, f"/executions/{execution_id}", page)
    assert status == 200
    assert 'class="mark expected">expected retry' in html
    assert 'class="mark unexpected">unexpected retry' in html
    assert f"{UNAVAILABLE} (attempt 2)" in html
    assert "not recorded by a wfmon worker" not in html

    # Another user sees nothing of it.
    other = {"Authorization": f"Bearer {own_world.token(own_world.dave)}"}
    assert get(own_world, f"/api/executions/{execution_id}", other)[0] == 404


def test_the_plain_workflow_lands_in_the_project_its_namespace_is_assigned_to(
    own_world: OwnWorld, synced: tuple[ExecutionRef, UUID], db: Database
) -> None:
    _, execution_id = synced
    with db.as_user(own_world.carol.auth_user_id) as conn:
        row = conn.execute(
            "SELECT e.project_id, e.created_by, e.workflow_id, w.name FROM workflow_executions e"
            " JOIN workflows w ON w.id = e.workflow_id WHERE e.id = %s",
            (execution_id,),
        ).fetchone()
    assert row is not None
    assert (row["project_id"], row["created_by"], row["name"]) == (
        own_world.carol.project.id,
        own_world.carol.user.id,
        f"{NAMESPACE}/GreetingWorkflow",
    )
    # The project page lists the workflow; its page lists the execution.
    page = {"Cookie": f"wfmon_token={own_world.token(own_world.carol)}", "Accept": "text/html"}
    status, html = get(own_world, f"/projects/{own_world.carol.project.id}", page)
    assert status == 200 and f"{NAMESPACE}/GreetingWorkflow" in html
    status, html = get(own_world, f"/workflows/{row['workflow_id']}", page)
    assert status == 200 and str(execution_id) in html


def test_an_unreachable_database_fails_no_activity_and_a_full_buffer_counts_drops(
    own_world: OwnWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """Wrong port: the workflow runs exactly as without the interceptor; the 5 attempts
    do not fit a buffer of 2, so 3 are dropped, counted and logged, without the DSN."""
    password = "pw-" + uuid.uuid4().hex
    dsn = f"postgresql://wfmon_recorder:{password}@127.0.0.1:{free_port()}/wfmon"
    down = wfmon.attempts.interceptor(dsn=dsn, capacity=2, flush_interval=0.05, close_timeout=0.5)
    h = own_world.harness
    queue = f"greetings-down-{uuid.uuid4().hex[:8]}"

    async def scenario() -> str:
        async with Worker(
            h.client,
            task_queue=queue,
            workflows=[GreetingWorkflow],
            activities=[compose_greeting, send_postcard],
            interceptors=[down],
        ):
            result = await h.client.execute_workflow(
                GreetingWorkflow.run,
                "World",
                id=f"greeting-down-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )
            for _ in range(40):  # the flusher tries (and fails) at least once
                if down.stats().write_failures:
                    break
                await asyncio.sleep(0.05)
            await down.close()
            return result

    with caplog.at_level(logging.WARNING, logger="wfmon.attempts"):
        result = h.run(scenario(), timeout=60)
    assert result == "Hello, World!"
    stats = down.stats()
    assert (stats.recorded, stats.written, stats.buffered, stats.dropped) == (5, 0, 2, 3)
    assert stats.write_failures >= 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dropped" in logged and "attempt sink write failed" in logged
    assert password not in logged and dsn not in logged


def test_a_dsn_that_does_not_parse_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL connection string") as err:
        wfmon.attempts.interceptor(dsn="user=u password=hunter2 hunter2")
    assert "hunter2" not in str(err.value)
    with pytest.raises(ValueError, match="exactly one of dsn= or sink="):
        wfmon.attempts.interceptor()


def test_the_recorder_login_may_only_insert_finished_attempts(recorder_url: str) -> None:
    """wfmon_recorder -> wfmon_attempt_writer: insert finished attempts, nothing else."""

    def attempt(outcome: str, ended: str | None = "now()") -> str:
        return (
            "INSERT INTO component_execution_attempts (temporal_namespace,"
            " temporal_workflow_id, temporal_run_id, activity_id, attempt, started_at,"
            f" ended_at, outcome) VALUES ('ns', 'wf-{uuid.uuid4().hex}', 'r', '1', 1, now(),"
            f" {ended or 'NULL'}, '{outcome}')"
        )

    def outcome(statement: str, role: str | None = "wfmon_attempt_writer") -> str:
        with psycopg.connect(recorder_url, autocommit=True) as conn:
            try:
                with conn.transaction():
                    if role:
                        conn.execute(f"SET LOCAL ROLE {role}")
                    conn.execute(statement)
                    raise _RollBack
            except _RollBack:
                return "ok"
            except psycopg.errors.InsufficientPrivilege as exc:
                return "denied: " + str(exc).split("\n")[0]

    assert outcome(attempt("failed")) == "ok"
    assert "row-level security" in outcome(attempt("running", None))
    for statement in (
        "SELECT * FROM component_execution_attempts",
        "UPDATE component_execution_attempts SET failure_message = 'x'",
        "DELETE FROM component_execution_attempts",
        "SELECT * FROM workflow_executions",
        "SELECT * FROM project_connections",
    ):
        assert outcome(statement).startswith("denied"), statement
    # The login itself can do nothing, and can become no other role.
    assert outcome(attempt("failed"), role=None).startswith("denied")
    for role in ("wfmon_system", "wfmon_user", "wfmon"):
        assert outcome("SELECT 1", role=role).startswith("denied"), role


class _RollBack(Exception):
    pass


def test_a_dsn_that_can_do_more_than_insert_attempts_is_reported_once(
    recorder_url: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The authenticator's URL works (it may become the writer) but the sink says, once,
    that a worker should hold the recorder login instead; the recorder login is quiet."""
    now = datetime.now(UTC)
    record = wfmon.attempts.AttemptRecord(
        namespace="ns", workflow_id=f"wf-{uuid.uuid4().hex}", run_id="r", workflow_type="T",
        activity_id="1", activity_type="a", attempt=1, is_local=False, task_queue="q",
        scheduled_at=now, started_at=now, ended_at=now,
        outcome=wfmon.attempts.AttemptOutcome.COMPLETED,
    )  # fmt: skip

    def write_twice(url: str) -> list[str]:
        sink = wfmon.attempts.PostgresAttemptSink(url)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="wfmon.attempts"):
            asyncio.run(sink.write([record]))
            sink.close()  # a reconnect does not repeat the warning
            asyncio.run(sink.write([record]))  # and the same attempt again adds nothing
        sink.close()
        return [r.getMessage() for r in caplog.records]

    assert write_twice(recorder_url) == []
    record = dataclasses.replace(record, workflow_id=f"wf-{uuid.uuid4().hex}")
    warnings = write_twice(database_url)
    assert len(warnings) == 1
    assert "'wfmon_authenticator'" in warnings[0] and "wfmon_system" in warnings[0]


def test_wfmon_namespace_assign(
    endpoints: Endpoints,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The operator's command: an unknown project is refused with exit 2, nothing written."""
    monkeypatch.setenv("WFMON_DATABASE_URL", endpoints.database_url)
    monkeypatch.setenv("WFMON_TEMPORAL_ADDRESS", endpoints.temporal_address)
    owner = make_owner(db, "erin")
    namespace = f"erins-{uuid.uuid4().hex[:6]}"
    missing = uuid.uuid4()
    assert main(["namespace", "assign", "--namespace", namespace, "--project", str(missing)]) == 2
    assert f"no project with id {missing}" in capsys.readouterr().err
    code = main(
        ["namespace", "assign", "--namespace", namespace, "--project", str(owner.project.id)]
    )
    assert code == 0
    assert f"namespace {namespace!r} -> project {owner.project.id}" in capsys.readouterr().out
    with db.as_user(owner.auth_user_id) as conn:
        found = namespace_owner(conn, namespace)
    assert found is not None and found.created_by == owner.user.id


def test_the_recorder_starts_by_itself_and_flushes_when_its_loop_ends() -> None:
    """No ``async with``, no ``close()``: as in ``asyncio.run(worker.run())``."""
    sink = wfmon.attempts.InMemoryAttemptSink()
    rec = wfmon.attempts.interceptor(sink=sink, flush_interval=30)
    now = datetime.now(UTC)
    record = wfmon.attempts.AttemptRecord(
        namespace="ns", workflow_id="wf", run_id="r", workflow_type="T", activity_id="1",
        activity_type="a", attempt=1, is_local=False, task_queue="q", scheduled_at=now,
        started_at=now, ended_at=now, outcome=wfmon.attempts.AttemptOutcome.COMPLETED,
    )  # fmt: skip

    async def worker_that_just_stops() -> None:
        rec.recorder.record(record)
        await asyncio.sleep(0)

    asyncio.run(worker_that_just_stops())
    assert sink.records == [record]
    assert rec.stats().written == 1
