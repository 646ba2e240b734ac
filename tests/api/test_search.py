"""Search (issue 12): executions really run on Temporal and synced (the session's world),
plus seeded ones; every field of the query language, the snippets, RLS, bad input, and the
page in a real browser."""

from __future__ import annotations

import importlib.util
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import World
from tests.api.seed import seed_execution
from tests.api.test_browser import CHROMIUM, shot, sign_in


def search(world: World, who: Any, q: str, **params: str) -> Any:
    extra = "".join(f"&{k}={quote(v)}" for k, v in params.items())
    reply = world.http(who).get(f"/api/search?q={quote(q)}{extra}")
    assert reply.status == 200, reply.text
    return reply.json()


def ids(body: Any) -> set[str]:
    return {item["id"] for item in body["items"]}


@pytest.fixture(scope="module")
def payload_execution(world: World) -> str:
    """One of Alice's executions with a nested input Bob will try to find."""
    return str(
        seed_execution(
            world.db,
            world.alice,
            components=3,
            status="failed",
            payload={"order_id": "A-17", "customer": {"id": "C-9", "tier": "gold"}},
        )
    )


def test_error_substring_names_the_failing_component(world: World) -> None:
    body = search(world, world.alice, "error:CardDeclined")
    assert str(world.executions["failed"]) in ids(body)
    hit = next(i for i in body["items"] if i["id"] == str(world.executions["failed"]))
    nodes = {m["node_id"] for m in hit["matches"]}
    assert "charge" in nodes, hit
    assert all("carddeclined" in m["snippet"].lower() for m in hit["matches"])
    # Lower case and a part of a word match too.
    assert str(world.executions["failed"]) in ids(search(world, world.alice, "carddecl"))


def test_each_field(world: World, payload_execution: str) -> None:
    ex = {k: str(v) for k, v in world.executions.items()}
    assert ids(search(world, world.alice, "status:terminated")) == {ex["terminated"]}
    failures = ids(search(world, world.alice, "status:failure"))
    assert {ex["failed"], ex["terminated"], ex["timed_out"]} <= failures
    assert ex["completed"] not in failures
    assert ex["failed"] in ids(search(world, world.alice, "node:charge"))
    assert ex["completed"] not in ids(search(world, world.alice, "node:charge"))
    flaky = ids(search(world, world.alice, "component:flaky"))
    assert ex["failed"] in flaky and ex["completed"] not in flaky
    name = world.alice.workflow.name
    assert ex["failed"] in ids(search(world, world.alice, f'workflow:"{name}"'))
    assert ids(search(world, world.alice, "workflow:nope-not-a-workflow")) == set()
    assert ex["timed_out"] in ids(search(world, world.alice, 'error:"deadline exceeded"'))
    assert ex["failed"] in ids(search(world, world.alice, "since:1d"))
    assert ids(search(world, world.alice, "until:2000-01-01")) == set()
    assert ex["failed"] in ids(search(world, world.alice, "time:2000-01-01.."))


def test_json_path_value_and_free_text(world: World, payload_execution: str) -> None:
    body = search(world, world.alice, 'order_id = "A-17"')
    assert ids(body) == {payload_execution}
    hit = body["items"][0]
    assert any(m["snippet"] == 'order_id = "A-17"' and m["node_id"] for m in hit["matches"])
    assert ids(search(world, world.alice, "input.customer.tier:gold")) == {payload_execution}
    assert ids(search(world, world.alice, "output.customer.tier:gold")) == set()
    # The builder's runs had input {"order": 42} (argument 0 of the run, key "input"): a
    # number compares as JSON, a numeric key indexes the argument list.
    q = "input.0.input.order:42"
    assert str(world.executions["failed"]) in ids(search(world, world.alice, q))
    # Free text inside the JSON.
    assert payload_execution in ids(search(world, world.alice, "input:gold"))
    assert payload_execution in ids(search(world, world.alice, "A-17"))


def test_rls_bob_never_sees_alices_executions(world: World, payload_execution: str) -> None:
    mine = str(world.executions["bob"])
    for q in ('order_id = "A-17"', "error:CardDeclined", "node:charge", "status:failure", "gold"):
        body = search(world, world.bob, q)
        assert body["total"] == 0 and body["items"] == [], (q, body)
    # Both ran with input {"order": 42}: Bob finds his own execution, never Alice's. (Other
    # modules of the session add runs of Bob's with that input too: compare the owners.)
    alices = ids(search(world, world.alice, "input.0.input.order:42"))
    body = search(world, world.bob, "input.0.input.order:42")
    assert alices and mine in ids(body) and not ids(body) & alices, (alices, body)
    assert body["total"] == len(ids(body))
    # Scoping to Alice's project or workflow does not help.
    body = search(world, world.bob, "", project_id=str(world.alice.project.id))
    assert body["total"] == 0
    body = search(world, world.bob, "order", workflow_id=str(world.alice.workflow.id))
    assert body["total"] == 0


def test_paging_and_sorting(world: World) -> None:
    first = search(world, world.alice, "status:failure", limit="1")
    assert first["total"] >= 3 and len(first["items"]) == 1 and first["has_more"]
    second = search(world, world.alice, "status:failure", limit="1", offset="1")
    assert ids(first).isdisjoint(ids(second)) and second["total"] == first["total"]
    newest = search(world, world.alice, "status:failure")["items"]
    oldest = search(world, world.alice, "status:failure", sort="started_at_asc")["items"]
    assert [i["id"] for i in newest] == [i["id"] for i in reversed(oldest)]
    starts = [i["started_at"] for i in newest]
    assert starts == sorted(starts, reverse=True)
    past = search(world, world.alice, "status:failure", offset="9000")
    assert past["items"] == [] and past["total"] == first["total"]


@pytest.mark.parametrize(
    ("q", "words"),
    [
        ("stauts:failed", ["unknown field 'stauts'", "position 1"]),
        ("status:broken", ["unknown status 'broken'", "position 8"]),
        ('error:"card', ["quote is not closed", "position 7"]),
        ("since:2026-11-02 until:2026-11-01", ["ends before it starts"]),
        ("xy", ["at least 3 characters"]),
        ("since:yesterday", ["'yesterday' is not a time"]),
    ],
)
def test_malformed_query_is_422_naming_the_problem(world: World, q: str, words: list[str]) -> None:
    reply = world.http(world.alice).get(f"/api/search?q={quote(q)}")
    assert reply.status == 422, reply.text
    body = reply.json()
    assert body["error"] == "invalid_input" and body["fields"][0]["field"] == "query.q"
    for w in words:
        assert w in body["message"], body
    assert "items" not in body


@pytest.mark.parametrize(
    "query",
    ["sort=sideways", "limit=0", "limit=1000", "offset=-1", "project_id=not-a-uuid"],
)
def test_bad_parameters_are_422(world: World, query: str) -> None:
    reply = world.http(world.alice).get(f"/api/search?q=timeout&{query}")
    assert reply.status == 422, reply.text
    assert reply.json()["error"] == "invalid_input"


def test_needs_sign_in(world: World) -> None:
    assert world.http().get("/api/search?q=timeout").status == 401


def test_page_shows_a_malformed_query_readably(world: World) -> None:
    reply = world.http(world.alice).get(
        "/search?q=" + quote("stauts:failed"), headers={"Accept": "text/html"}
    )
    assert reply.status == 422
    assert "That query is not valid" in reply.text and "unknown field" in reply.text


browser_only = [
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="needs the playwright package"
    ),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}"),
]


@browser_only[0]
@browser_only[1]
def test_search_page_in_a_browser(world: World, payload_execution: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            context = browser.new_context(
                viewport={"width": 1366, "height": 850}, base_url=world.url
            )
            context.set_default_timeout(15_000)
            page = context.new_page()
            sign_in(page, world)
            # The box in the header of every page.
            page.get_by_label("Search executions").fill("error:CardDeclined")
            page.get_by_label("Search executions").press("Enter")
            page.wait_for_url("**/search?q=*")
            rows = page.locator("#search-results tbody tr")
            assert rows.count() >= 1
            assert "charge" in page.locator("#search-results").inner_text()
            shot(page, "search", doc=True, full_page=True)
            # The form builds the same query.
            page.get_by_label("Path").fill("order_id")
            page.get_by_label("Value").fill("A-17")
            page.get_by_role("button", name="Search with these").click()
            page.wait_for_url("**path=order_id**")
            assert page.get_by_label("Query").input_value() == "input.order_id:A-17"
            assert rows.count() == 1
            assert rows.first.get_attribute("data-id") == payload_execution
            # A malformed query is shown, with where it went wrong.
            page.get_by_label("Query").fill("stauts:failed")
            page.get_by_role("button", name="Search", exact=True).click()
            assert page.get_by_role("alert").is_visible()
            assert "unknown field" in page.get_by_role("alert").inner_text()
            shot(page, "search-error")
            context.close()
        finally:
            browser.close()
