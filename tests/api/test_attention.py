"""Needs attention end to end: a component retrying on Temporal shows in the project's
"needs attention" while it retries (live sync) and leaves it when it succeeds; unexpected
retries and workflows failing since their last run are listed; another user sees nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.api.conftest import JWT_SECRET, SUCCESS, World
from tests.api.seed import Person, make_person
from tests.browser import open_context, requires_browser, shot, sign_in

#: Fails twice, then succeeds; attempts ~1 s apart (the dev server's floor), at most 4.
RETRYING: dict[str, Any] = {
    "id": "sync-stock",
    "name": "sync-stock",
    "version": 1,
    "nodes": [
        {
            "id": "reserve",
            "component": "flaky",
            "config": {"fail_times": 2, "error_type": "StockBusy"},
            "retry_policy": {
                "strategy": "fail_after_attempts",
                "max_attempts": 4,
                "interval": "1s",
            },
        }
    ],
    "edges": [],
}

#: Retries until its attempts are used up: unexpected retries, and a failed run.
EXHAUSTED: dict[str, Any] = {
    "id": "sync-stock",
    "name": "sync-stock",
    "version": 1,
    "nodes": [
        {
            "id": "reserve",
            "component": "flaky",
            "config": {"fail_times": 5, "error_type": "StockBusy"},
            "retry_policy": {
                "strategy": "fail_after_attempts",
                "max_attempts": 2,
                "interval": "100ms",
            },
        }
    ],
    "edges": [],
}


@pytest.fixture(scope="module")
def erin(world: World) -> Person:
    erin = make_person(world.db, "erin", JWT_SECRET, RETRYING)
    world.sync(world.run(erin, SUCCESS))
    world.sync(world.run(erin, EXHAUSTED))
    return erin


def attention(world: World, who: Person) -> dict[str, Any]:
    r = world.http(who).get(f"/api/projects/{who.project.id}/attention")
    assert r.status == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_failing_workflow_and_unexpected_retries_are_listed(world: World, erin: Person) -> None:
    a = attention(world, erin)
    assert a["counts"]["failing_workflows"] == 1
    (failing,) = a["failing_workflows"]
    assert failing["workflow_id"] == str(erin.workflow.id)
    assert failing["status"] == "failed" and failing["failures_since"] == 1
    assert failing["last_success_at"] is not None
    assert a["counts"]["unexpected_retries"] == 1
    (unexpected,) = a["unexpected_retries"]
    assert unexpected["node_id"] == "reserve" and unexpected["retry_count"] == 1
    assert "fails on purpose" in unexpected["last_error"]


def test_a_retrying_component_is_listed_until_it_succeeds(world: World, erin: Person) -> None:
    handle = world.run(erin, RETRYING, wait=False)
    deadline = time.monotonic() + 20
    seen: dict[str, Any] | None = None
    execution_id = None
    while time.monotonic() < deadline and seen is None:
        time.sleep(0.3)
        execution_id = world.sync(handle)  # what live re-sync does for a running execution
        items = [
            r for r in attention(world, erin)["retrying"] if r["execution_id"] == str(execution_id)
        ]
        seen = items[0] if items else None
    assert seen is not None, "the retrying component never showed up"
    assert seen["node_id"] == "reserve" and seen["max_attempts"] == 4
    assert seen["attempt_label"] in ("attempt 2 of 4", "attempt 3 of 4")
    assert "fails on purpose" in (seen["last_error"] or "")
    assert seen["next_retry_at"] is not None
    assert attention(world, erin)["counts"]["retrying"] >= 1

    world.harness.run(handle.result())
    world.sync(handle)
    after = attention(world, erin)
    assert all(r["execution_id"] != str(execution_id) for r in after["retrying"])
    # the workflow succeeded again: no longer failing since its last run
    assert after["counts"]["failing_workflows"] == 0


def test_another_user_sees_nothing(world: World, erin: Person) -> None:
    bob = world.http(world.bob)
    assert bob.get(f"/api/projects/{erin.project.id}/attention").status == 404
    assert (
        bob.get(f"/projects/{erin.project.id}/attention", headers={"Accept": "text/html"}).status
        == 404
    )
    mine = attention(world, world.bob)
    ids = {r["execution_id"] for r in mine["unexpected_retries"] + mine["retrying"]}
    assert not ids & {r["execution_id"] for r in attention(world, erin)["unexpected_retries"]}
    assert world.http().get(f"/api/projects/{erin.project.id}/attention").status == 401
    assert world.http(erin).get("/api/projects/nope/attention").status == 422


@requires_browser
def test_needs_attention_page_and_project_counts(browser: Any, world: World, erin: Person) -> None:
    world.sync(world.run(erin, EXHAUSTED))  # failing again
    context = open_context(browser, world.url, height=700)
    page = context.new_page()
    try:
        sign_in(page, erin.token)
        page.goto(f"/projects/{erin.project.id}")
        page.wait_for_function(
            "() => document.getElementById('attention-summary').dataset.loaded === 'true'"
        )
        summary = page.locator("#attention-summary")
        assert summary.locator("[data-count='failing_workflows']").inner_text() == "1"
        assert summary.locator("[data-count='unexpected_retries']").inner_text() == "2"
        page.get_by_role("link", name="Needs attention").click()
        page.wait_for_url("**/attention")
        assert page.locator("tr.failing").count() == 1
        assert page.locator("tr.unexpected").count() == 2
        shot(page, "needs-attention", doc=True)
    finally:
        context.close()
