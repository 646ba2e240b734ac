"""Live pages in a real browser (Playwright driving Debian's Chromium): the execution page
and the history list update by push while an execution runs, say "live", fall back to
polling (and say so) when the stream is killed, and come back.

Skipped, with the reason, only when playwright or ``/usr/bin/chromium`` is missing.
Screenshots: ``WFMON_SCREENSHOT_DIR``; with ``WFMON_UPDATE_DOC_IMAGES=1`` also docs/images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from tests.browser import SHOTS, copy_to_docs, open_context, requires_browser
from tests.live.conftest import LiveWorld, wait_until
from wfmon.api.tokens import signin_url
from wfmon.db import notify
from wfmon.db.locks import libpq_url
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.model import ComponentStatus, ExecutionStatus
from wfmon.testing import execution_row, write_execution

pytestmark = requires_browser

STATE = "() => document.querySelector('[data-live-indicator]').dataset.liveState"
#: Tell the page it is hidden or shown, as the browser does for a background tab.
HIDE = (
    "() => {{ Object.defineProperty(document, 'hidden', {{value: {hidden}, configurable: true}});"
    " document.dispatchEvent(new Event('visibilitychange')); }}"
)


def shot(page: Any, name: str, top: str, bottom: str) -> None:
    """A screenshot of the page from the element ``top`` to the element ``bottom``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.evaluate(f"document.querySelector('{top}').scrollIntoView()")
    first, last = page.locator(top).bounding_box(), page.locator(bottom).bounding_box()
    y0, y1 = max(0, first["y"] - 8), last["y"] + last["height"] + 8
    page.screenshot(path=str(path), clip={"x": 0, "y": y0, "width": 1280, "height": y1 - y0})
    copy_to_docs(path)


@pytest.fixture
def page(browser: Any, live: LiveWorld) -> Iterator[Any]:
    context = open_context(browser, width=1280, height=800, timeout_ms=10_000)
    try:
        pg = context.new_page()
        pg.goto(signin_url(live.url, live.token(live.alice)))
        pg.wait_for_url("**/projects")
        yield pg
    finally:
        context.close()


def _component(node: str, event: int, status: ComponentStatus) -> ComponentExecutionRow:
    return ComponentExecutionRow(node, event, status, started_at=datetime.now(UTC))


def _wait_state(page: Any, state: str, timeout: float = 10_000) -> None:
    page.wait_for_function(f"() => ({STATE})() === '{state}'", timeout=timeout)


def _card(page: Any, node: str) -> None:
    page.locator("article.card code", has_text=node).first.wait_for()


def _kill_the_stream(live: LiveWorld) -> None:
    with psycopg.connect(libpq_url(live.endpoints.web_database_url), autocommit=True) as conn:
        assert notify.terminate_listeners(conn) == 1


def test_pages_update_by_push_and_poll_while_the_stream_is_down(page: Any, live: LiveWorld) -> None:
    a = live.alice
    row: ExecutionRow = execution_row(a, status=ExecutionStatus.RUNNING)
    fetch = _component("fetch", 5, ComponentStatus.RUNNING)
    e = write_execution(live.db, row, components=[fetch])
    page.goto(f"{live.url}/executions/{e}")
    _wait_state(page, "live")
    assert page.locator("[data-live-indicator]").inner_text() == "live"
    page.evaluate(
        "() => { window.__sameDocument = true; window.__updates = [];"
        " document.addEventListener('wfmon:live-update',"
        " (ev) => window.__updates.push(ev.detail)); }"
    )

    # Pushed: the sync writes a finished "fetch" and a running "charge".
    done = replace(fetch, status=ComponentStatus.COMPLETED, duration_ms=120)
    write_execution(
        live.db, row, components=[done, _component("charge", 9, ComponentStatus.RUNNING)]
    )
    _card(page, "charge")
    assert page.evaluate("window.__sameDocument") is True  # no reload
    updates = page.evaluate("window.__updates")
    assert {"kind": "execution", "execution_id": str(e)} in updates
    shot(page, "live-view", ".live-line", ".exec-head .figures")

    # The stream is killed: the page says "polling" and still shows what the sync writes.
    _kill_the_stream(live)
    _wait_state(page, "polling", timeout=5_000)
    assert page.locator("[data-live-indicator]").inner_text() == "polling"
    write_execution(
        live.db,
        row,
        components=[
            done,
            _component("charge", 9, ComponentStatus.RUNNING),
            _component("ship", 13, ComponentStatus.RUNNING),
        ],
    )
    _card(page, "ship")
    # ... and goes live again once the server listens again.
    _wait_state(page, "live", timeout=15_000)

    # The execution ends: the status changes without a reload and the page stops.
    now = datetime.now(UTC)
    closed = replace(
        row,
        status=ExecutionStatus.COMPLETED,
        closed_at=now,
        duration_ms=int((now - row.started_at).total_seconds() * 1000),
    )
    write_execution(live.db, closed, components=[done])
    page.wait_for_function(
        "() => document.querySelector('.exec-head').dataset.status === 'completed'"
    )
    assert page.evaluate("window.__sameDocument") is True
    _wait_state(page, "off")

    # The history list: a new run shows up in the table by push.
    page.goto(f"{live.url}/workflows/{a.workflow.id}?tab=executions")
    _wait_state(page, "live")
    count = page.locator("#exec-count").inner_text()
    page.evaluate("() => { window.__sameDocument = true; }")
    new = write_execution(live.db, execution_row(a, status=ExecutionStatus.FAILED))
    page.locator(f"#executions a[href='/executions/{new}']").wait_for()
    assert page.locator("#exec-count").inner_text() != count
    assert page.evaluate("window.__sameDocument") is True

    # A tab in the background holds no stream; back in view it is live again.
    wait_until(lambda: live.hub.subscriptions == 1, what="one open stream")
    page.evaluate(HIDE.format(hidden="true"))
    _wait_state(page, "paused")
    wait_until(lambda: live.hub.subscriptions == 0, what="the hidden tab's stream to close")
    page.evaluate(HIDE.format(hidden="false"))
    _wait_state(page, "live")
    assert live.hub.subscriptions == 1
