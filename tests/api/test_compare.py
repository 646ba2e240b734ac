"""Compare two runs (GET /api/executions/{id}/compare and its page), over real services.

Carol's workflow runs on Temporal (the builder workflow with the built-in ``transform``
and ``flaky`` components): two successful runs, a run whose input makes ``price`` fail
(so ``ship`` never runs), and a run of definition version 2 whose ``notify`` node has
another retry policy and whose ``ship`` node another config. 5,000-node runs are written
with the sync's own writers (tests/api/seed.py).
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import pytest
from temporalio.client import WorkflowFailureError

from tests.api.conftest import JWT_SECRET, World
from tests.api.seed import Person, make_person, seed_execution
from tests.browser import open_context, requires_browser, shot, sign_in
from wfmon.api.compare_models import CompareOut
from wfmon.db.accounts import create_workflow, save_workflow_version
from wfmon.model import WorkflowDefinition
from wfmon.runtime import start_builder_run
from wfmon.runtime.client import RunContext

FAST = {"interval": "100ms"}


def definition(version: int) -> dict[str, Any]:
    return {
        "id": "checkout",
        "name": "checkout",
        "version": version,
        "nodes": [
            {
                "id": "load",
                "component": "transform",
                "config": {"pick": {"order": "workflow.order", "items": "workflow.items"}},
            },
            {
                "id": "price",
                "component": "transform",
                "config": {"pick": {"total": "upstream.load.items.0.price"}},
            },
            {
                "id": "notify",
                "component": "flaky",
                "config": {"fail_times": 1, "output": {"sent": True}},
                "retry_policy": {
                    "strategy": "fail_after_attempts",
                    "max_attempts": 3 if version == 1 else 5,
                    **FAST,
                },
            },
            {
                "id": "ship",
                "component": "transform",
                "config": {"set": {"shipped": True}}
                if version == 1
                else {"set": {"shipped": True, "carrier": "ups"}},
            },
        ],
        "edges": [
            {"source": "load", "target": "price"},
            {"source": "load", "target": "notify"},
            {"source": "price", "target": "ship"},
        ],
    }


@dataclass
class Runs:
    carol: Person
    ok1: UUID
    ok2: UUID
    failed: UUID
    v2: UUID


async def _run(world: World, owner: Person, version: int, data: Any) -> Any:
    h = world.harness
    handle = await start_builder_run(
        h.client,
        WorkflowDefinition.model_validate(definition(version)),
        data,
        context=RunContext(
            workflow_id=str(owner.workflow.id),
            project_id=str(owner.project.id),
            user_id=str(owner.user.id),
        ),
        task_queue=h.builder_queue,
    )
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    return handle


@pytest.fixture(scope="module")
def runs(world: World) -> Runs:
    carol = make_person(world.db, "carol", JWT_SECRET, definition(1))

    def run(version: int, data: Any) -> UUID:
        return world.sync(world.harness.run(_run(world, carol, version, data)))

    ok1 = run(1, {"order": 1, "items": [{"price": 5}]})
    ok2 = run(1, {"order": 2, "items": [{"price": 7}, {"price": 1}]})
    failed = run(1, {"order": 3, "items": []})
    with world.db.as_user(carol.auth_user_id) as conn:
        assert (
            save_workflow_version(
                conn,
                workflow_id=carol.workflow.id,
                definition=definition(2),
                created_by=carol.user.id,
            )
            == 2
        )
    v2 = run(2, {"order": 2, "items": [{"price": 7}, {"price": 1}]})
    return Runs(carol, ok1, ok2, failed, v2)


def compare(world: World, who: Person, execution: UUID, other: UUID | None = None, **q: Any) -> Any:
    params = {**({"with": str(other)} if other else {}), **q}
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return world.http(who).get(f"/api/executions/{execution}/compare?{query}")


def changes(payload: dict[str, Any]) -> dict[tuple[Any, ...], tuple[str, Any, Any]]:
    return {tuple(c["path"]): (c["kind"], c["old"], c["new"]) for c in payload["changes"]}


def test_a_failed_run_against_its_default_partner(world: World, runs: Runs) -> None:
    r = compare(world, runs.carol, runs.failed)
    assert r.status == 200, r.text
    body = r.json()
    CompareOut.model_validate(body)  # the documented response model
    # The default: the LAST successful run of the same version before this one.
    assert body["baseline_is_default"] is True
    assert body["baseline"]["id"] == str(runs.ok2)
    assert body["current"]["id"] == str(runs.failed)
    assert (body["baseline"]["status"], body["current"]["status"]) == ("completed", "failed")
    assert body["same_version"] is True and body["definition"] is None
    nodes = {n["node_id"]: n for n in body["nodes"]}
    assert set(nodes) == {"load", "price", "notify", "ship"}

    load = nodes["load"]
    assert load["presence"] == "both" and load["changed"]
    assert (load["baseline"]["status"], load["current"]["status"]) == ("completed", "completed")
    assert not load["status_changed"]
    # Output: a structural diff of {"order": ..., "items": [...]}, lists by index.
    assert changes(load["output"]) == {
        ("order",): ("changed", 2, 3),
        ("items", 0): ("removed", {"price": 7}, None),
        ("items", 1): ("removed", {"price": 1}, None),
    }
    # Input: the activity's argument (a list of one NodeInput) with the workflow input in it.
    input_changes = changes(load["input"])
    assert input_changes[(0, "workflow_input", "order")] == ("changed", 2, 3)
    assert load["input"]["total"] == len(load["input"]["changes"]) == 3
    assert {c["path_text"] for c in load["input"]["changes"]} >= {"[0].workflow_input.order"}

    price = nodes["price"]
    assert price["status_changed"] and price["error_changed"]
    assert (price["baseline"]["status"], price["current"]["status"]) == ("completed", "failed")
    assert price["baseline"]["error_message"] is None
    assert "nothing at" in price["current"]["error_message"]
    assert price["current"]["error_type"] == "non_retryable"  # what the history records

    ship = nodes["ship"]
    assert ship["presence"] == "baseline_only" and ship["current"] is None
    assert ship["baseline"]["status"] == "completed"

    for n in nodes.values():
        side = n["current"] or n["baseline"]
        assert side["attempts"] >= 1 and side["runs"] == 1
        if n["presence"] == "both" and n["current"]["duration_ms"] is not None:
            assert n["duration_delta_ms"] == (
                n["current"]["duration_ms"] - n["baseline"]["duration_ms"]
            )
    assert nodes["notify"]["baseline"]["attempts"] == 2, "flaky fails once, then succeeds"

    s = body["summary"]
    assert (s["nodes"], s["in_both"], s["baseline_only"], s["current_only"]) == (4, 3, 1, 0)
    assert s["status_changed"] >= 1
    assert s["duration_delta_ms"] == (
        body["current"]["duration_ms"] - body["baseline"]["duration_ms"]
    )


def test_two_successful_runs_compared_explicitly(world: World, runs: Runs) -> None:
    body = compare(world, runs.carol, runs.ok2, runs.ok1).json()
    assert body["baseline_is_default"] is False and body["baseline"]["id"] == str(runs.ok1)
    nodes = {n["node_id"]: n for n in body["nodes"]}
    assert all(n["presence"] == "both" for n in nodes.values())
    assert changes(nodes["price"]["output"]) == {("total",): ("changed", 5, 7)}
    assert changes(nodes["load"]["output"]) == {
        ("order",): ("changed", 1, 2),
        ("items", 0, "price"): ("changed", 5, 7),
        ("items", 1): ("added", None, {"price": 1}),
    }
    assert nodes["ship"]["output"]["total"] == 0, "ship's output is the same in both"


def test_a_run_of_another_version_shows_the_changed_node_settings(world: World, runs: Runs) -> None:
    body = compare(world, runs.carol, runs.v2, runs.ok2).json()
    CompareOut.model_validate(body)
    assert body["same_version"] is False
    assert (body["baseline"]["workflow_version"], body["current"]["workflow_version"]) == (1, 2)
    d = body["definition"]
    assert (d["old_version"], d["new_version"]) == (1, 2)
    assert d["nodes_added"] == d["nodes_removed"] == []
    assert d["edges_added"] == d["edges_removed"] == []
    by = {(s["node_id"], s["setting"]): s for s in d["settings"]}
    assert set(by) == {("notify", "retry_policy"), ("ship", "config")}
    rp = by["notify", "retry_policy"]
    assert changes(rp) == {("max_attempts",): ("changed", 3, 5)}
    assert rp["old_text"] == "fail after 3 attempts, 100ms apart"
    assert rp["new_text"] == "fail after 5 attempts, 100ms apart"
    assert changes(by["ship", "config"]) == {("set", "carrier"): ("added", None, "ups")}
    nodes = {n["node_id"]: n for n in body["nodes"]}
    assert [s["setting"] for s in nodes["notify"]["settings"]] == ["retry_policy"]
    assert changes(nodes["ship"]["output"]) == {("carrier",): ("added", None, "ups")}
    assert nodes["load"]["output"]["total"] == 0, "same input, same output"
    # Same workflow input: load and price ran the same; changed_only leaves them out.
    assert not nodes["load"]["changed"] and not nodes["price"]["changed"]
    only = compare(world, runs.carol, runs.v2, runs.ok2, changed_only="true").json()
    assert {n["node_id"] for n in only["nodes"]} == {"notify", "ship"}
    assert only["summary"]["nodes"] == 4 and only["summary"]["changed"] == 2


def test_no_default_partner_is_a_clear_404(world: World, runs: Runs) -> None:
    r = compare(world, runs.carol, runs.v2)
    assert r.status == 404
    assert r.json()["message"].startswith("no successful run of version 2 to compare with")
    r = compare(world, runs.carol, runs.ok1)
    assert r.status == 404
    assert "no successful run of version 1 to compare with" in r.json()["message"]
    # The default partner of a successful run is the previous successful run.
    assert compare(world, runs.carol, runs.ok2).json()["baseline"]["id"] == str(runs.ok1)


def test_row_level_security_either_side_is_not_found(world: World, runs: Runs) -> None:
    bob, carol = world.bob, runs.carol
    bobs = world.executions["bob"]
    missing = UUID(int=7)
    unknown = compare(world, bob, bobs, missing)
    assert (unknown.status, unknown.json()) == (
        404,
        {"error": "not_found", "message": f"execution {missing} not found"},
    )
    for execution, other in ((bobs, runs.ok1), (runs.ok1, bobs), (runs.ok1, runs.ok2)):
        r = compare(world, bob, execution, other)
        # Exactly what an id that does not exist gets (only the id differs).
        assert r.status == 404, (execution, other, r.text)
        assert r.json() == {"error": "not_found", "message": f"execution {runs.ok1} not found"}
    assert compare(world, bob, runs.ok1).status == 404
    r = world.http(bob).get(f"/api/executions/{runs.ok1}/compare/candidates")
    assert r.status == 404
    assert compare(world, carol, runs.ok2, runs.ok1).status == 200
    assert world.http().get(f"/api/executions/{runs.ok1}/compare").status == 401


def test_bad_input_is_a_clear_422(world: World, runs: Runs) -> None:
    carol = runs.carol
    r = compare(world, carol, runs.ok1, runs.ok1)
    assert r.status == 422
    assert "cannot be compared with itself" in r.json()["message"]
    r = world.http(carol).get(f"/api/executions/{runs.ok1}/compare?with=nope")
    assert r.status == 422 and r.json()["fields"][0]["field"] == "query.with"
    assert world.http(carol).get("/api/executions/nope/compare").status == 422
    r = compare(world, carol, runs.ok1, runs.ok2, limit=0)
    assert r.status == 422 and "query.limit" in r.json()["message"]
    # Another workflow of the same user: 422 naming both workflows.
    with world.db.as_user(carol.auth_user_id) as conn:
        other_wf = create_workflow(
            conn,
            project_id=carol.project.id,
            created_by=carol.user.id,
            name="carol refunds",
            definition={},
        )
    other = seed_execution(world.db, replace(carol, workflow=other_wf), components=2)
    r = compare(world, carol, runs.ok1, other)
    assert r.status == 422
    message = r.json()["message"]
    assert "different workflows" in message
    assert repr(carol.workflow.name) in message and "'carol refunds'" in message


def test_candidates_for_the_picker(world: World, runs: Runs) -> None:
    body = world.http(runs.carol).get(f"/api/executions/{runs.failed}/compare/candidates").json()
    assert body["default_baseline"] == str(runs.ok2)
    ids = [c["id"] for c in body["recent"]]
    assert str(runs.failed) not in ids
    assert ids[:3] == [str(runs.v2), str(runs.ok2), str(runs.ok1)], "newest first"


def test_two_5000_node_runs(world: World) -> None:
    alice = world.alice
    base = seed_execution(world.db, alice, components=5000, payload={"n": 1, "text": "y" * 200})
    cur = world.executions["big"]
    t0 = time.perf_counter()
    r = compare(world, alice, cur, base)
    elapsed = time.perf_counter() - t0
    assert r.status == 200
    body = r.json()
    assert body["summary"]["nodes"] == 5000 and body["summary"]["in_both"] == 5000
    first = body["nodes"][0]
    assert changes(first["input"]) == {("text",): ("changed", "y" * 200, "x" * 200)}
    assert elapsed < 5, f"{elapsed:.2f} s (the benchmark measures it properly)"
    # The app runs in this process: the garbage collector, paused while a comparison
    # runs, is back on afterwards, also after one that failed.
    assert gc.isenabled()
    assert compare(world, alice, cur, UUID(int=9)).status == 404
    assert gc.isenabled()
    # The page renders the first 500 changed nodes and says how many there are.
    t0 = time.perf_counter()
    page = world.http(alice).get(
        f"/executions/{cur}/compare?with={base}", headers={"Accept": "text/html"}
    )
    elapsed = time.perf_counter() - t0
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count('<tbody class="node') == 500
    assert "Showing the first 500 of 5000 nodes" in page.text
    assert elapsed < 10, f"{elapsed:.2f} s"
    long = seed_execution(world.db, alice, components=2, payload={"text": "z" * 5000})
    short = seed_execution(world.db, alice, components=2, payload={"text": "z"})
    (change,) = compare(world, alice, long, short).json()["nodes"][0]["input"]["changes"]
    assert change["new_truncated"] and not change["old_truncated"]
    assert change["new"].endswith("…") and len(change["new"]) == 201


# -- the page, in Chromium ---------------------------------------------------------------


@requires_browser
def test_the_compare_page_in_a_browser(browser: Any, world: World, runs: Runs) -> None:
    context = open_context(browser, world.url, height=900)
    page = context.new_page()
    try:
        sign_in(page, runs.carol.token)

        # The execution page's control: a link to the default comparison and a picker.
        page.goto(f"/executions/{runs.failed}")
        picker = page.get_by_label("or compare with…")
        page.wait_for_function("() => document.querySelector('#compare-with').options.length >= 3")
        options = picker.locator("option").evaluate_all("os => os.map(o => o.value)")
        assert options[0] == str(runs.ok2), "the default comes first"
        assert str(runs.ok1) in options and str(runs.failed) not in options
        page.get_by_role("link", name="Compare with the last successful run").click()
        page.wait_for_url(f"**/executions/{runs.failed}/compare")

        summary = page.locator("#compare-summary")
        assert "4 nodes" in summary.inner_text()
        price = page.locator("tbody.node[data-node='price']")
        assert price.locator(".badge.s-completed").count() == 1
        assert price.locator(".badge.s-failed").count() == 1
        assert "nothing at" in price.locator("td.err").inner_text()
        ship = page.locator("tbody.node[data-node='ship']")
        assert ship.get_attribute("data-presence") == "baseline_only"
        assert "only in the baseline" in ship.inner_text()
        load = page.locator("tbody.node[data-node='load']")
        paths = load.locator("code.path").all_inner_texts()
        assert "order" in paths and "items[0]" in paths
        shot(page, "compare", doc=True, full_page=True)

        # The picker on the compare page: another baseline, of another version.
        page.goto(f"/executions/{runs.v2}/compare?with={runs.ok2}")
        assert "version 1 → 2" in page.locator("#definition-changes").inner_text()
        changes = page.locator("#definition-changes li.setting-change").all_inner_texts()
        assert any(
            "notify" in c and "fail after 3 attempts" in c and "fail after 5" in c for c in changes
        ), changes
        page.get_by_label("Compare with…").select_option(str(runs.ok1))
        page.get_by_role("button", name="Compare").click()
        page.wait_for_url(f"**with={runs.ok1}**")
        shot(page, "compare-versions")

        # No default partner: the message, and the picker to choose one.
        response = page.goto(f"/executions/{runs.v2}/compare")
        assert response is not None and response.status == 404
        assert (
            "no successful run of version 2 to compare with"
            in page.locator("#compare-message").inner_text()
        )
        assert page.get_by_label("Compare with…").locator("option").count() >= 3
    finally:
        context.close()
