"""The alerts page in Chromium (Debian's, driven by Playwright): create a rule with the
form, send a test alert to a real webhook receiver, see it in the delivery log — also on
the project page. The screenshot is docs/images/alerts.png (``WFMON_UPDATE_DOC_IMAGES=1``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerts.conftest import JWT_SECRET, POLICY, SIGNING_SECRET, App, Receiver
from tests.browser import open_context, requires_browser, shot, sign_in
from wfmon.alerts import run_tick
from wfmon.connections import Keyring
from wfmon.db import Database
from wfmon.model import ExecutionStatus
from wfmon.testing import execution_row, make_owner, write_execution

pytestmark = requires_browser

HOOK_TOKEN = "browser-hook-TOKEN-4242"


@pytest.fixture(scope="module")
def page(browser: Any, alert_app: App) -> Iterator[Any]:
    context = open_context(browser, alert_app.url, height=1000)
    yield context.new_page()
    context.close()


def test_create_rule_send_test_alert_and_see_the_log(
    page: Any, alert_app: App, db: Database, keyring: Keyring, receiver: Receiver
) -> None:
    owner = make_owner(db, "browser-alerts", workflow_name="checkout")
    sign_in(page, owner.dev_token(JWT_SECRET))

    page.goto(f"/projects/{owner.project.id}/alerts")
    form = page.locator("#add-rule")
    form.get_by_label("Name", exact=True).fill("checkout failing")
    form.get_by_label("Alert when").select_option("execution_failed")
    page.get_by_label("Parameters (JSON)").fill('{"consecutive": 2}')
    form.get_by_label("Workflow").select_option(label="checkout")
    assert not form.get_by_label("SMTP host").is_visible()
    form.get_by_label("URL", exact=True).fill(receiver.url(f"/hook/browser?t={HOOK_TOKEN}"))
    form.get_by_label("Signing secret", exact=False).fill(SIGNING_SECRET)
    form.get_by_role("button", name="Add rule").click()

    row = page.locator("#alert-rules tr[data-rule]")
    row.wait_for()
    assert "checkout failing" in row.inner_text() and "consecutive=2" in row.inner_text()
    receiver.clear()
    row.get_by_role("button", name="Send test alert").click()
    page.locator("#alert-rules output.result", has_text="test alert sent").wait_for()
    page.locator('#alert-deliveries tr.delivery[data-status="sent"]').wait_for()
    [got] = [r for r in receiver.wait_for(1) if r.path.startswith("/hook/browser")]
    assert got.signature_ok and got.json()["test"] is True
    html = page.content()
    assert HOOK_TOKEN not in html and SIGNING_SECRET not in html

    # Three failures in a row: the rule's alert for the streak, then a suppressed duplicate.
    for _ in range(3):
        write_execution(db, execution_row(owner, status=ExecutionStatus.FAILED))
    run_tick(db, keyring, POLICY, base_url=alert_app.url)
    page.reload()
    page.locator('#alert-deliveries tr.delivery[data-status="suppressed"]').wait_for()
    assert page.locator('#alert-deliveries tr.delivery[data-status="sent"]').count() == 2
    shot(page, "alerts", doc=True, full_page=True)

    page.goto(f"/projects/{owner.project.id}")
    summary = page.locator("#project-alerts tr.delivery")
    summary.first.wait_for()
    rows = {(r.get_attribute("data-status"), r.locator("td").nth(3).inner_text())
            for r in summary.all()}  # fmt: skip
    assert rows == {
        ("sent", "Test alert of rule checkout failing"),
        ("sent", "checkout failed 2 times in a row"),
        ("suppressed", "checkout failed 3 times in a row"),
    }
