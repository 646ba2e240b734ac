"""Both buttons of the execution page, clicked in Debian's Chromium (Playwright).

With ``WFMON_UPDATE_DOC_IMAGES=1`` the screenshot the user guide shows is copied to
``docs/images/rerun.png`` (see tests/api/test_browser.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import open_context, requires_browser, shot, sign_in
from tests.rerun.conftest import World, restock_flow

pytestmark = requires_browser


@pytest.fixture
def page(browser: Any, rerun_world: World) -> Iterator[Any]:
    context = open_context(browser, rerun_world.server.url, width=1280, height=800)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_retry_from_the_failed_node_and_run_again_from_the_page(
    page: Any, rerun_world: World
) -> None:
    from playwright.sync_api import expect

    w = rerun_world
    table = w.new_table()
    failed = w.run_and_sync(w.alice, restock_flow(table, w.connection_id))
    w.create_table(table, rows=2)

    sign_in(page, w.alice.token)
    page.goto(f"/executions/{failed}")
    retry = page.get_by_role("button", name="Retry from the failed node")
    again = page.get_by_role("button", name="Run again with the same input")
    assert retry.is_visible() and again.is_visible()
    assert "query" in page.locator("#rerun").inner_text()  # names the failed node
    shot(page, "rerun", doc=True)

    retry.click()
    page.wait_for_url(lambda url: "/executions/" in url and str(failed) not in url)
    retried = page.url.rsplit("/", 1)[-1]
    back = page.locator("#rerun-links .rerun-of a")
    assert back.inner_text().startswith("the run started ")
    assert back.get_attribute("href") == f"/executions/{failed}"
    expect(page.locator("#rerun-links")).to_contain_text(
        "Retry from the failed node of", timeout=15_000
    )
    shot(page, "rerun-linked", doc=True)

    back.click()
    page.wait_for_url(f"**/executions/{failed}")
    forward = page.locator("#rerun-links .reruns a[data-kind=retry_from_failed]")
    assert forward.get_attribute("href") == f"/executions/{retried}"
    # Retried once already: the page says why, from the API's answer.
    page.get_by_role("button", name="Retry from the failed node").click()
    error = page.locator("form[action$=retry-from-failed] .error")
    error.wait_for(state="visible")
    assert "already retried" in error.inner_text()

    page.get_by_role("button", name="Run again with the same input").click()
    page.wait_for_url(lambda url: str(failed) not in url and retried not in url)
    # rerun.js fills the links after the page loads: wait for them, then read them.
    expect(page.locator("#rerun-links")).to_contain_text("Run again of", timeout=15_000)
    expect(page.locator("#rerun-links .rerun-of a")).to_have_attribute(
        "href", f"/executions/{failed}", timeout=15_000
    )

    # The workflow's history list marks both re-runs, each linking back to the failed run.
    page.goto(f"/workflows/{w.alice.workflow.id}?tab=executions")
    marks = page.locator(f'#executions .rerun-mark[href="/executions/{failed}"]')
    expect(marks).to_have_count(2)
    kinds = marks.evaluate_all("ms => ms.map(m => m.dataset.kind)")
    assert sorted(kinds) == ["retry_from_failed", "run_again"]
    shot(page, "rerun-history", doc=True)
