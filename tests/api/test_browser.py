"""The pages in a real browser (Debian's Chromium, via tests/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import browser as chromium
from tests.api.conftest import World, sleeper
from tests.browser import CHROMIUM, DOC_IMAGES, SHOTS, requires_browser, shot

# CHROMIUM, DOC_IMAGES, SHOTS and shot are imported from here by older modules.
__all__ = ["CHROMIUM", "DOC_IMAGES", "SHOTS", "page", "shot", "sign_in"]

pytestmark = requires_browser


@pytest.fixture
def page(browser: Any, world: World) -> Iterator[Any]:
    context = chromium.open_context(browser, world.url)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Any, world: World) -> None:
    chromium.sign_in(page, world.alice.token)


def test_sign_in_open_a_workflow_filter_and_read_a_failed_execution(
    page: Any, world: World
) -> None:
    page.goto(f"/workflows/{world.alice.workflow.id}")
    assert "/signin?next=" in page.url, page.url
    sign_in(page, world)
    page.get_by_role("link", name=world.alice.project.name).click()
    page.get_by_role("link", name=world.alice.workflow.name).click()
    assert page.get_by_role("tab", name="Overview").get_attribute("aria-selected") == "true"
    shot(page, "workflow-overview", doc=True)

    page.get_by_role("tab", name="Executions").click()
    page.wait_for_url("**tab=executions**")
    shot(page, "execution-history", doc=True)
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**status=failed**")
    rows = page.locator("#executions tbody tr")
    assert rows.count() >= 1
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.status)")) == {"failed"}
    shot(page, "execution-history-failed")

    page.get_by_label("Status").select_option("terminated")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**status=terminated**")
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.status)")) == {"terminated"}
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**status=failed**")

    page.locator("#executions tbody tr a").first.click()
    page.wait_for_url("**/executions/*")
    assert page.locator(".tl-row").count() == 2
    assert page.locator(".tl-row .seg.k-wait").count() >= 2, "retries are segments"

    card = page.locator("article.card", has=page.locator("code", has_text="fetch")).first
    input_block = card.locator("details.io").first
    assert input_block.locator("pre").is_visible() is False
    input_block.locator("summary").click()
    assert input_block.locator("pre").is_visible()
    assert "workflow_input" in input_block.locator("pre").inner_text()

    expected = page.locator(".mark.expected")
    unexpected = page.locator(".mark.unexpected")
    assert expected.count() >= 1 and unexpected.count() >= 1
    assert "attempt 1 of 3" in page.locator("tr.attempt", has=expected).first.inner_text()
    assert "attempt 1 of 2" in page.locator("tr.attempt", has=unexpected).first.inner_text()
    href = page.get_by_role("link", name="Download the full raw history (JSON)").get_attribute(
        "href"
    )
    assert href is not None and href.endswith("/history")
    shot(page, "execution-detail", doc=True, full_page=True)

    page.keyboard.press("Home")
    page.goto(f"/workflows/{world.alice.workflow.id}?tab=statistics")
    assert page.locator("figure.chart svg rect.runs").count() >= 1
    shot(page, "workflow-statistics", doc=True)


def test_connections_add_test_edit_delete(page: Any, world: World, database_url: str) -> None:
    sign_in(page, world)
    page.goto(f"/projects/{world.alice.project.id}?tab=connections")
    add = page.locator("#add-connection")
    add.get_by_label("Name", exact=True).fill("warehouse-ui")
    add.get_by_label("Type").select_option("postgresql")
    add.get_by_label("URL", exact=True).fill(database_url)
    page.get_by_role("button", name="Add connection").click()
    row = page.locator("tr[data-name='warehouse-ui']")
    row.wait_for()
    password = database_url.split("@")[0].rsplit(":", 1)[-1]
    assert password not in page.content()
    assert "@" not in row.locator(".c-url").inner_text()
    row.get_by_role("button", name="Test").click()
    page.wait_for_function(
        "() => document.querySelector(\"tr[data-name='warehouse-ui'] output\").textContent"
        ".startsWith('OK')"
    )
    shot(page, "project-connections", doc=True)

    add.get_by_label("Name", exact=True).fill("warehouse-ui")
    add.get_by_label("URL", exact=True).fill(database_url)
    page.get_by_role("button", name="Add connection").click()
    error = page.locator("#add-connection .error")
    error.wait_for(state="visible")
    assert "already exists" in error.inner_text()

    row.get_by_role("button", name="Edit").click()
    page.locator("#edit-name").fill("warehouse-renamed")
    page.get_by_role("button", name="Save").click()
    renamed = page.locator("tr[data-name='warehouse-renamed']")
    renamed.wait_for()
    renamed.get_by_role("button", name="Delete").click()
    renamed.get_by_role("button", name="Confirm delete").click()
    renamed.wait_for(state="detached")

    page.get_by_role("tab", name="Statistics").click()
    page.wait_for_url("**tab=statistics")
    assert page.get_by_text("Most used workflows").is_visible()
    assert page.locator("figure.chart svg rect.runs").count() >= 1
    shot(page, "project-statistics", doc=True)


def test_a_running_execution_refreshes_live(page: Any, world: World) -> None:
    handle = world.run(world.alice, sleeper(5), wait=False)
    execution_id = world.sync(handle)
    sign_in(page, world)
    page.goto(f"/executions/{execution_id}")
    head = page.locator(".exec-head")
    assert head.get_attribute("data-status") == "running"
    shot(page, "execution-running", doc=True)
    page.wait_for_function(
        "() => document.querySelector('.exec-head').dataset.status === 'completed'",
        timeout=30_000,
    )
    assert page.locator("article.card .badge.s-completed").count() >= 1


def test_5000_component_execution_is_paged(page: Any, world: World) -> None:
    # How fast it renders is a benchmark's figure (bench/bench_graph.py: the same page with
    # its 500-node graph against the page without it), not a timed assertion here.
    sign_in(page, world)
    page.goto(f"/executions/{world.executions['big']}", wait_until="load")
    assert page.locator("article.card").count() == 100
    assert page.get_by_text("Page 1 of 50").first.is_visible()
    page.get_by_role("link", name="Next 100 →").first.click()
    page.wait_for_url("**page=2**")
    assert "node-00100" in page.locator("article.card code").first.inner_text()


def test_keyboard_reaches_the_content(page: Any, world: World) -> None:
    sign_in(page, world)
    page.goto(f"/workflows/{world.alice.workflow.id}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('role')") == "tab":
            break
    assert page.evaluate("document.activeElement.getAttribute('role')") == "tab"
