"""The graph in a real browser: Playwright driving Debian's Chromium (never a downloaded one).

One browser and one signed-in context for the module. Screenshots go to
``WFMON_SCREENSHOT_DIR`` (default ``.wfmon/artifacts/screenshots``); with
``WFMON_UPDATE_DOC_IMAGES=1`` the one the user guide shows is copied to ``docs/images``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import open_context, requires_browser, shot
from tests.graph.conftest import JWT_SECRET, GraphWorld, running_components
from wfmon.testing import write_execution

pytestmark = requires_browser

DRAWN = "() => document.getElementById('wfmon-graph')?.dataset.state === 'drawn'"


@pytest.fixture(scope="module")
def context(browser: Any, graph_world: GraphWorld) -> Iterator[Any]:
    ctx = open_context(browser, graph_world.url, token=graph_world.alice_token, height=900)
    yield ctx
    ctx.close()


@pytest.fixture
def browser_context_for(browser: Any, graph_world: GraphWorld) -> Iterator[Any]:
    """A page signed in as another owner (a context of its own, closed afterwards)."""
    made: list[Any] = []

    def open_as(owner: Any) -> Any:
        ctx = open_context(browser, graph_world.url, token=owner.dev_token(JWT_SECRET), height=900)
        made.append(ctx)
        return ctx.new_page()

    yield open_as
    for ctx in made:
        ctx.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    p = context.new_page()
    try:
        yield p
    finally:
        p.close()


def node(page: Any, node_id: str) -> Any:
    return page.locator(f"#wfmon-graph g.gnode[data-node='{node_id}']")


def test_execution_graph_statuses_card_and_keyboard(page: Any, graph_world: GraphWorld) -> None:
    page.goto(f"/executions/{graph_world.failed}")
    page.wait_for_function(DRAWN)
    graph = page.locator("#wfmon-graph")
    # Version 1's nodes (ship, not today's audit) and its three edges.
    ids = page.locator("#wfmon-graph g.gnode").evaluate_all("gs => gs.map(g => g.dataset.node)")
    assert sorted(ids) == ["charge", "fetch", "notify", "ship"]
    assert graph.get_attribute("data-edges") == "3"
    assert graph.get_attribute("data-nodes") == "4"
    assert graph.get_attribute("data-layout-source") == "dagre", "a fresh browser lays it out"
    assert "version 1" in graph.locator(".graph-caption").inner_text()
    assert "s-failed" in (node(page, "charge").get_attribute("class") or "")
    assert "failed · attempt 3 of 3" in node(page, "charge").text_content()
    assert "250 ms" in node(page, "charge").text_content()
    assert "completed · attempt 2 of 3" in node(page, "fetch").text_content()
    ship = node(page, "ship")
    assert "s-not_run" in (ship.get_attribute("class") or "")
    assert "upstream charge did not complete" in (ship.get_attribute("aria-label") or "")
    # Retry policy at a glance: an icon per strategy and the sentence.
    assert node(page, "charge").locator(".gretry.r-exponential_backoff").count() == 1
    assert node(page, "ship").locator(".gretry.r-no_retries").count() == 1
    assert "no retries: fail on the first error" in ship.text_content()
    # Left to right: fetch before charge before ship.
    xs = {i: node(page, i).bounding_box()["x"] for i in ("fetch", "charge", "ship")}
    assert xs["fetch"] < xs["charge"] < xs["ship"]

    # Click opens the node's component card beside the graph.
    node(page, "charge").click()
    panel = graph.locator(".graph-panel")
    card = panel.locator("article.card.s-failed")
    card.wait_for()
    assert "Retry history: 3 attempts" in card.inner_text()
    assert card.locator("tr.attempt").count() == 3
    assert "card declined" in card.inner_text()
    graph.scroll_into_view_if_needed()
    shot(page, "graph", doc=True)

    # Keyboard: the graph is one tab stop; arrows move along the edges; Enter opens.
    page.locator("#wfmon-graph .graph-zoom button").last.focus()
    page.keyboard.press("Tab")
    focused = "() => document.activeElement.closest('g.gnode')?.dataset.node"
    assert page.evaluate(focused) == "charge", "the selected node is the graph's tab stop"
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == "ship"
    page.keyboard.press("Enter")
    panel.locator(".graph-node-detail[data-node='ship'] .not-run-node").wait_for()
    assert "upstream charge did not complete" in panel.inner_text()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == "fetch"
    page.keyboard.press("Enter")
    panel.locator("article.card.s-completed").wait_for()

    # Zoom: buttons and keys change the scale; 0 fits.
    before = float(graph.get_attribute("data-zoom") or 0)
    graph.get_by_role("button", name="Zoom in").click()
    assert float(graph.get_attribute("data-zoom") or 0) > before
    node(page, "fetch").focus()
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert float(graph.get_attribute("data-zoom") or 0) < before


def test_workflow_graph_events_and_versions(page: Any, graph_world: GraphWorld) -> None:
    page.goto(f"/workflows/{graph_world.alice.workflow.id}")
    page.wait_for_function(DRAWN)
    ids = page.locator("#wfmon-graph g.gnode").evaluate_all("gs => gs.map(g => g.dataset.node)")
    assert sorted(ids) == ["audit", "charge", "fetch", "notify"], "today's version 2"
    page.evaluate(
        "() => { window.__selected = []; document.addEventListener('wfmon:node-select',"
        " e => window.__selected.push(e.detail.node_id)); }"
    )
    node(page, "notify").click()
    node(page, "fetch").focus()
    page.keyboard.press("Enter")
    page.evaluate("() => window.wfmonGraph.select('audit')")
    assert page.evaluate("() => window.__selected") == ["notify", "fetch", "audit"]
    summary = page.locator("#wfmon-graph .graph-panel .graph-node-detail[data-node='audit']")
    assert "fail after 3 attempts, 1s apart" in summary.inner_text()
    # The node panel's contract: a saved version is redrawn from that version.
    page.evaluate(
        "() => document.dispatchEvent(new CustomEvent('wfmon:definition-changed',"
        " {detail: {version: 1}}))"
    )
    page.wait_for_function("() => document.getElementById('wfmon-graph').dataset.version === '1'")
    page.wait_for_function("() => !!document.querySelector(\"g.gnode[data-node='ship']\")")
    assert node(page, "audit").count() == 0


def test_running_execution_graph_updates_live(page: Any, graph_world: GraphWorld) -> None:
    page.goto(f"/executions/{graph_world.running}")
    page.wait_for_function(DRAWN)
    charge = node(page, "charge")
    assert "retrying · attempt 2 of 3" in charge.text_content()
    assert "s-waiting" in (node(page, "ship").get_attribute("class") or "")
    node(page, "charge").click()
    page.locator("#wfmon-graph .graph-panel article.card.s-retrying").wait_for()
    page.evaluate("() => { document.querySelector('#wfmon-graph').dataset.marker = 'same page'; }")
    zoom = page.locator("#wfmon-graph").get_attribute("data-zoom")

    row = graph_world.running_row
    t0 = row.started_at
    write_execution(graph_world.db, row, components=running_components(t0, done=True))
    page.wait_for_function(
        "() => document.querySelector(\"g.gnode[data-node='charge']\")"
        ".classList.contains('s-completed')",
        timeout=10_000,
    )
    assert "s-running" in (node(page, "ship").get_attribute("class") or "")
    # The same page (no reload), zoom kept, the open card refreshed.
    assert page.locator("#wfmon-graph").get_attribute("data-marker") == "same page"
    assert page.locator("#wfmon-graph").get_attribute("data-zoom") == zoom
    page.locator("#wfmon-graph .graph-panel article.card.s-completed").wait_for()


def test_a_big_graph_draws_what_is_in_view_and_the_keyboard_reaches_the_rest(
    browser_context_for: Any, graph_world: GraphWorld
) -> None:
    page = browser_context_for(graph_world.big)
    page.goto(f"/workflows/{graph_world.big.workflow.id}")
    page.wait_for_function(DRAWN)
    graph = page.locator("#wfmon-graph")
    assert graph.get_attribute("data-nodes") == "320"
    rendered = int(graph.get_attribute("data-rendered") or 0)
    assert 0 < rendered < 320, "only the nodes in view are in the DOM"
    assert node(page, "n39-7").count() == 0
    node(page, "n00-0").focus()
    page.keyboard.press("End")
    focused = "() => document.activeElement.closest('g.gnode')?.dataset.node"
    assert page.evaluate(focused) == "n39-7", "drawn when reached, then focused"
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == "n38-7"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.graph-panel .graph-node-detail')?.dataset.node === 'n38-7'"
    )
    graph.get_by_role("button", name="Fit the whole graph").click()
    page.wait_for_function(
        "() => document.querySelector('#wfmon-graph svg').classList.contains('far')"
    )
    page.wait_for_function("() => document.querySelectorAll('#wfmon-graph g.gnode').length === 320")
