"""Both buttons of the execution page, clicked in Debian's Chromium (Playwright).

With ``WFMON_UPDATE_DOC_IMAGES=1`` the screenshot the user guide shows is copied to
``docs/images/rerun.png`` (see tests/api/test_browser.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_browser import CHROMIUM, shot
from tests.rerun.conftest import World, restock_flow

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="browser tests need the Python package playwright (pip install playwright)",
    ),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


@pytest.fixture
def page(rerun_world: World) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, base_url=rerun_world.server.url
        )
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            browser.close()


def test_retry_from_the_failed_node_and_run_again_from_the_page(
    page: Any, rerun_world: World
) -> None:
    from playwright.sync_api import expect

    w = rerun_world
    table = w.new_table()
    failed = w.run_and_sync(w.alice, restock_flow(table, w.connection_id))
    w.create_table(table, rows=2)

    page.goto("/signin")
    page.get_by_label("Access token").fill(w.alice.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/projects")
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
