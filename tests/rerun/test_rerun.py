"""Run again and retry from the failed node, through the HTTP API, on real services.

The retry test is the issue's: a PostgreSQL query node fails (its table does not exist),
the cause is fixed (the table is created), the run is retried from the failed node, and
the attempt rows show the upstream node did not run again while the failed node and its
downstream node did; the new run replays deterministically against today's code.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.worker import Replayer

from tests.api.seed import Person
from tests.rerun.conftest import JWT_SECRET, World, restock_flow
from wfmon.db import reruns
from wfmon.db.accounts import save_workflow_version
from wfmon.db.details import list_attempts
from wfmon.model import ExecutionStatus
from wfmon.rerun import reset_point
from wfmon.runtime.workflow import BuilderWorkflow
from wfmon.testing import execution_row, make_owner, write_execution


def attempts_by_node(w: World, who: Any, workflow_id: str, run_id: str) -> Counter[str]:
    with w.db.as_user(who.auth_user_id) as conn:
        rows = list_attempts(conn, "default", workflow_id, run_id)
    return Counter(r["activity_id"] for r in rows)


def detail(w: World, who: Any, execution_id: UUID) -> dict[str, Any]:
    reply = w.http(who).get(f"/api/executions/{execution_id}?fresh=false")
    assert reply.status == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def history(w: World, who: Any) -> dict[str, Any]:
    """The workflow's history list as ``who`` sees it: each item's ``rerun_of`` by id."""
    reply = w.http(who).get(f"/api/workflows/{who.workflow.id}/executions?page_size=100")
    assert reply.status == 200, reply.text
    return {item["id"]: item["rerun_of"] for item in reply.json()["items"]}


def test_retry_from_the_failed_node_reruns_it_and_downstream_only(rerun_world: World) -> None:
    w, alice = rerun_world, rerun_world.alice
    table = w.new_table()
    failed_id = w.run_and_sync(alice, restock_flow(table, w.connection_id))
    failed = detail(w, alice, failed_id)
    assert failed["execution"]["status"] == "failed"
    wf_id, old_run = (
        failed["execution"]["temporal_workflow_id"],
        failed["execution"]["temporal_run_id"],
    )
    assert attempts_by_node(w, alice, wf_id, old_run) == {"prepare": 1, "query": 1}

    w.create_table(table, rows=3)  # fix the cause
    reply = w.http(alice).post(f"/api/executions/{failed_id}/retry-from-failed")
    assert reply.status == 200, reply.text
    out = reply.json()
    assert out["kind"] == "retry_from_failed" and out["failed_node_id"] == "query"
    assert out["temporal_workflow_id"] == wf_id and out["temporal_run_id"] != old_run
    new_run = out["temporal_run_id"]
    w.wait(wf_id, new_run)
    new_id = w.sync(wf_id, new_run)
    assert out["execution_id"] in (None, str(new_id))  # synced at once (or shortly after)

    # The upstream node kept its result and did not run again; query and report did.
    assert attempts_by_node(w, alice, wf_id, old_run) == {"prepare": 1, "query": 1}
    assert attempts_by_node(w, alice, wf_id, new_run) == {"query": 1, "report": 1}
    new = detail(w, alice, new_id)
    assert new["execution"]["status"] == "completed"
    statuses = {c["node_id"]: c["status"] for c in new["components"]}
    assert statuses == {"prepare": "completed", "query": "completed", "report": "completed"}
    report = next(c for c in new["components"] if c["node_id"] == "report")
    assert report["output"] == {"n": 3, "sku": "A-1"}

    # Linked both ways; both runs in the workflow's history list.
    links = w.http(alice).get(f"/api/executions/{failed_id}/reruns").json()
    assert [(r["kind"], r["execution_id"]) for r in links["reruns"]] == [
        ("retry_from_failed", str(new_id))
    ]
    back = w.http(alice).get(f"/api/executions/{new_id}/reruns").json()
    assert back["rerun_of"]["execution_id"] == str(failed_id)
    assert back["rerun_of"]["kind"] == "retry_from_failed"
    listed = history(w, alice)
    assert listed[str(new_id)] == {
        "kind": "retry_from_failed",
        "source_execution_id": str(failed_id),
    }
    assert listed[str(failed_id)] is None

    # Once per run: a second reset would terminate the first retry if it still ran.
    again = w.http(alice).post(f"/api/executions/{failed_id}/retry-from-failed")
    assert again.status == 409 and again.json()["error"] == "already_retried", again.text

    # The link survives the new run's row being written again by a later sync.
    with w.db.as_user(alice.auth_user_id) as conn:
        conn.execute("DELETE FROM workflow_executions WHERE id = %s", (new_id,))
    resynced = w.sync(wf_id, new_run)
    assert resynced != new_id
    back = w.http(alice).get(f"/api/executions/{resynced}/reruns").json()
    assert back["rerun_of"]["execution_id"] == str(failed_id)

    # The reset run replays against today's builder workflow (determinism).
    async def replay() -> None:
        history = await w.harness.client.get_workflow_handle(wf_id, run_id=new_run).fetch_history()
        await Replayer(workflows=[BuilderWorkflow]).replay_workflow(history)

    w.harness.run(replay())


def test_run_again_with_the_same_input_on_the_same_or_the_latest_version(
    rerun_world: World,
) -> None:
    w = rerun_world
    # A public workflow: others read its definition, never its executions.
    owner = make_owner(w.db, "carol", definition={}, visibility="public")
    carol = Person(owner.user, owner.project, owner.workflow, owner.dev_token(JWT_SECRET))
    first = {
        "id": "hello",
        "name": "hello",
        "version": 1,
        "nodes": [
            {
                "id": "greet",
                "component": "transform",
                "config": {"template": {"msg": "v1 {workflow.sku}"}},
            },
        ],
    }
    with w.db.as_user(carol.auth_user_id) as conn:
        save_workflow_version(
            conn, workflow_id=carol.workflow.id, definition=first, created_by=carol.user.id
        )
    source = w.run_and_sync(carol, {**first, "version": 2})
    latest = {
        **first,
        "nodes": [{**first["nodes"][0], "config": {"template": {"msg": "v3 {workflow.sku}"}}}],
    }
    with w.db.as_user(carol.auth_user_id) as conn:
        assert (
            save_workflow_version(
                conn, workflow_id=carol.workflow.id, definition=latest, created_by=carol.user.id
            )
            == 3
        )

    outputs = {}
    for choice, version in (("same", 2), ("latest", 3)):
        if choice == "same":  # the page's form: 303 to the new run's page
            form = w.http(carol).post(
                f"/executions/{source}/rerun",
                raw=b"version=same",
                headers={
                    "Accept": "text/html",
                    "X-Wfmon-Request": "1",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            assert form.status == 303, form.text
            new_id = UUID(form.headers["location"].removeprefix("/executions/"))
            d = detail(w, carol, new_id)["execution"]
            w.wait(d["temporal_workflow_id"], d["temporal_run_id"])
        else:
            reply = w.http(carol).post(f"/api/executions/{source}/rerun", {"version": choice})
            assert reply.status == 200, reply.text
            out = reply.json()
            assert out["kind"] == "run_again" and out["definition_version"] == version
            w.wait(out["temporal_workflow_id"], out["temporal_run_id"])
            d = {
                "temporal_workflow_id": out["temporal_workflow_id"],
                "temporal_run_id": out["temporal_run_id"],
            }
        new_id = w.sync(d["temporal_workflow_id"], d["temporal_run_id"])
        d = detail(w, carol, new_id)["execution"]
        assert d["status"] == "completed" and d["workflow_version"] == version
        assert d["input"][0]["input"] == {"sku": "A-1"}  # the same input
        outputs[choice] = d["output"]["outputs"]["greet"]["msg"]
    assert outputs == {"same": "v1 A-1", "latest": "v3 A-1"}

    links = w.http(carol).get(f"/api/executions/{source}/reruns").json()["reruns"]
    assert [(r["kind"], r["definition_version"]) for r in links] == [
        ("run_again", 2),
        ("run_again", 3),
    ]
    listed = history(w, carol)
    assert listed[str(source)] is None
    for r in links:  # the history list marks each re-run, with the run it came from
        assert listed[r["execution_id"]] == {
            "kind": "run_again",
            "source_execution_id": str(source),
        }

    bob = w.http(w.bob)
    assert bob.get(f"/api/workflows/{carol.workflow.id}").status == 200
    assert bob.get(f"/api/executions/{source}?fresh=false").status == 404
    for action in ("rerun", "retry-from-failed"):
        reply = bob.post(f"/api/executions/{source}/{action}")
        assert reply.status == 404 and reply.json()["error"] == "not_found", reply.text


def test_refused_requests_are_clear_4xx_and_write_nothing(rerun_world: World) -> None:
    w, alice, bob = rerun_world, rerun_world.alice, rerun_world.bob
    table = w.new_table()
    failed = w.run_and_sync(alice, restock_flow(table, w.connection_id))
    ok_table = w.new_table()
    w.create_table(ok_table, rows=1)
    completed = w.run_and_sync(alice, restock_flow(ok_table, w.connection_id))
    with w.db.as_user(alice.auth_user_id) as conn:
        links_before = len(reruns.reruns_of(conn, failed)) + len(reruns.reruns_of(conn, completed))

    def post(who: Any, execution: Any, action: str, body: Any = None) -> tuple[int, str]:
        reply = w.http(who).post(f"/api/executions/{execution}/{action}", body)
        assert reply.headers["content-type"].startswith("application/json"), reply.text
        return reply.status, reply.json()["error"] if reply.status >= 400 else "ok"

    unknown = "00000000-0000-4000-8000-000000000000"
    for action in ("rerun", "retry-from-failed"):
        assert post(alice, unknown, action) == (404, "not_found")
        # Another user: exactly like an execution that does not exist (API and page).
        assert post(bob, failed, action) == (404, "not_found")
        page = w.http(bob).post(f"/executions/{failed}/{action}", headers={"X-Wfmon-Request": "1"})
        assert page.status == 404 and "text/html" in page.headers["content-type"]
    assert w.http(bob).get(f"/api/executions/{failed}/reruns").status == 404
    assert post(alice, completed, "retry-from-failed") == (409, "not_failed")
    assert post(alice, failed, "rerun", {"version": "newest"}) == (422, "invalid_input")

    # A builder run that failed with no failed node: terminated while its node slept.
    sleeper = {
        "id": "nap",
        "name": "nap",
        "version": 1,
        "nodes": [{"id": "nap", "component": "sleep", "config": {"seconds": 30}}],
    }
    handle = w.start(alice, sleeper)
    assert handle.result_run_id is not None
    running = w.sync(handle.id, handle.result_run_id)
    assert post(alice, running, "rerun") == (409, "still_running")
    assert post(alice, running, "retry-from-failed") == (409, "still_running")
    w.harness.run(handle.terminate("stopped by the test"))
    terminated = w.sync(handle.id, handle.result_run_id)
    assert post(alice, terminated, "retry-from-failed") == (409, "no_failed_node")

    # Not a builder workflow: the same sentence the page shows instead of the buttons.
    other = write_execution(
        w.db,
        execution_row(alice, workflow_type="OrderSaga", status=ExecutionStatus.FAILED),
    )
    for action in ("rerun", "retry-from-failed"):
        assert post(alice, other, action) == (409, "not_builder_workflow")
    page = w.http(alice).get(f"/executions/{other}")
    assert "OrderSaga workflow, started by its own application" in page.text
    assert "Retry from the failed node</button>" not in page.text

    # Temporal no longer has it (a row synced long ago): refused, nothing recorded.
    gone = write_execution(
        w.db, execution_row(alice, status=ExecutionStatus.FAILED, temporal_run_id=str(uuid4()))
    )
    for action in ("rerun", "retry-from-failed"):
        assert post(alice, gone, action) == (409, "gone_from_temporal")

    # Its workflow was deleted (workflow_id set to NULL): a new run would belong to nobody.
    orphan = write_execution(
        w.db,
        execution_row(
            alice, status=ExecutionStatus.FAILED, workflow_id=None, workflow_version=None
        ),
    )
    for action in ("rerun", "retry-from-failed"):
        assert post(alice, orphan, action) == (409, "workflow_deleted")

    refused = (failed, completed, terminated, other, gone, orphan)
    with w.db.as_user(alice.auth_user_id) as conn:
        links_after = sum(len(reruns.reruns_of(conn, e)) for e in refused)
    assert links_after == links_before == 0

    # Two retries at once (a double click): one reset, the other is told it was done.
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: post(alice, failed, "retry-from-failed"), range(2)))
    assert sorted(answers) == [(200, "ok"), (409, "already_retried")]
    with w.db.as_user(alice.auth_user_id) as conn:
        assert [r.kind for r in reruns.reruns_of(conn, failed)] == ["retry_from_failed"]


def test_a_reset_made_outside_wfmon_is_linked_not_repeated(rerun_world: World) -> None:
    """Reset in Temporal's UI or CLI (or a link whose commit was lost): wfmon records the
    link from Temporal's reset_run_id and does not reset the run a second time."""
    w, alice = rerun_world, rerun_world.alice
    failed = w.run_and_sync(alice, restock_flow(w.new_table(), w.connection_id))
    e = detail(w, alice, failed)["execution"]
    wf_id, old_run = e["temporal_workflow_id"], e["temporal_run_id"]

    async def reset_by_hand() -> str:
        handle = w.harness.client.get_workflow_handle(wf_id, run_id=old_run)
        point = reset_point([ev async for ev in handle.fetch_history_events()])
        assert point is not None
        response = await w.harness.client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace="default",
                workflow_execution=WorkflowExecution(workflow_id=wf_id, run_id=old_run),
                reason="by hand",
                workflow_task_finish_event_id=point.workflow_task_completed_event_id,
                request_id=str(uuid4()),
            )
        )
        return response.run_id

    by_hand = w.harness.run(reset_by_hand())
    reply = w.http(alice).post(f"/api/executions/{failed}/retry-from-failed")
    assert reply.status == 409 and reply.json()["error"] == "already_retried", reply.text
    assert by_hand in reply.json()["message"]
    links = w.http(alice).get(f"/api/executions/{failed}/reruns").json()["reruns"]
    assert [(r["kind"], r["temporal_run_id"]) for r in links] == [("retry_from_failed", by_hand)]
    w.wait(wf_id, by_hand)
    runs = w.harness.run(_runs_of(w, wf_id))
    assert runs == {old_run, by_hand}, "not reset a second time"


async def _runs_of(w: World, workflow_id: str) -> set[str]:
    query = f"WorkflowId = '{workflow_id}'"
    return {wf.run_id async for wf in w.harness.client.list_workflows(query)}
