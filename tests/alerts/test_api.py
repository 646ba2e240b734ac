"""The alerts API and page through the real web app: rules CRUD, test alerts over the three
channels (a real HTTP receiver checking the HMAC signature, aiosmtpd), row-level security
for another user, and no secret in any response, log, delivery row or error."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.alerts.conftest import (
    JWT_SECRET,
    POLICY,
    SIGNING_SECRET,
    SMTP_PASSWORD,
    SMTP_USER,
    App,
    Receiver,
    Smtp,
)
from tests.api.conftest import Http
from wfmon.alerts import deliver_due, evaluate_rules
from wfmon.connections import Keyring
from wfmon.db import Database
from wfmon.dev.process import free_port
from wfmon.model import ExecutionStatus
from wfmon.testing import WorkflowOwner, execution_row, make_owner, write_execution

WEBHOOK_TOKEN = "tok-WEBHOOK-SECRET-9f8e7d"
SLACK_TOKEN = "T000/B000/SLACKSECRETXYZ"
#: The test SMTP server takes AUTH without TLS (loopback only), which aiosmtpd warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
SLACK_BLOCK_TYPES = {"section", "context", "divider", "header", "actions", "image", "rich_text"}


def http(app: App, owner: WorkflowOwner) -> Http:
    return Http(app.url, owner.dev_token(JWT_SECRET))


def secrets(receiver: Receiver) -> list[str]:
    return [WEBHOOK_TOKEN, SLACK_TOKEN, SIGNING_SECRET, SMTP_PASSWORD]


@pytest.fixture(scope="module")
def people(db: Database) -> dict[str, WorkflowOwner]:
    return {"alice": make_owner(db, "alice-alerts"), "bob": make_owner(db, "bob-alerts")}


def webhook_channel(receiver: Receiver) -> dict[str, Any]:
    return {
        "type": "webhook",
        "url": receiver.url(f"/hook/api?token={WEBHOOK_TOKEN}"),
        "signing_secret": SIGNING_SECRET,
    }


def test_rules_api_channels_rls_and_secrets(
    alert_app: App,
    db: Database,
    keyring: Keyring,
    receiver: Receiver,
    smtp: Smtp,
    people: dict[str, WorkflowOwner],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob = people["alice"], people["bob"]
    a, b = http(alert_app, alice), http(alert_app, bob)
    base = f"/api/projects/{alice.project.id}/alert-rules"
    bodies: list[str] = []

    def ok(reply: Any, status: int = 200) -> Any:
        assert reply.status == status, reply.text
        bodies.append(reply.text)
        return reply.json() if reply.body else None

    # -- create, one rule per channel ------------------------------------------------------
    hook = ok(a.post(base, {"name": "hook", "kind": "execution_failed",
                            "channel": webhook_channel(receiver)}), 201)  # fmt: skip
    assert hook["channel_masked"] == f"{receiver.base}/… (signing secret configured)"
    assert hook["params"] == {"consecutive": 1} and hook["workflow_id"] is None
    slack = ok(a.post(base, {
        "name": "slack", "kind": "failure_rate", "workflow_id": str(alice.workflow.id),
        "params": {"threshold_percent": 20},
        "channel": {"type": "slack", "url": receiver.url(f"/slack/services/{SLACK_TOKEN}")},
    }), 201)  # fmt: skip
    assert slack["params"] == {"window_minutes": 60, "threshold_percent": 20, "min_executions": 5}
    assert slack["workflow_name"] == alice.workflow.name
    mail = ok(a.post(base, {
        "name": "mail", "kind": "running_execution", "params": {"max_seconds": 600},
        "quiet_period_seconds": 60,
        "channel": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "security": "none",
                    "username": SMTP_USER, "password": SMTP_PASSWORD,
                    "sender": "wfmon@example.com", "recipients": ["ops@example.com"]},
    }), 201)  # fmt: skip
    assert mail["channel_settings"]["recipients"] == ["ops@example.com"]
    assert "password" not in mail["channel_settings"]
    assert mail["channel_masked"].endswith("(password configured)")

    # -- bad input: 4xx naming the problem, nothing written -----------------------------------
    bad = [
        ({"name": "x", "kind": "nope", "channel": webhook_channel(receiver)}, 422, "kind"),
        ({"name": "x", "kind": "execution_failed", "params": {"consecutive": 0},
          "channel": webhook_channel(receiver)}, 422, "params.consecutive"),
        ({"name": "x", "kind": "execution_failed", "params": {"what": 1},
          "channel": webhook_channel(receiver)}, 422, "params.what"),
        ({"name": "x", "kind": "running_execution", "channel": webhook_channel(receiver)},
         422, "max_retries, max_seconds"),
        ({"name": "x", "kind": "execution_failed",
          "channel": {"type": "webhook", "url": "ftp://h/x", "signing_secret": SIGNING_SECRET}},
         422, "http:// or https://"),
        ({"name": "x", "kind": "execution_failed",
          "channel": {"type": "webhook", "url": receiver.url("/hook/x")}}, 422, "signing_secret"),
        ({"name": "hook", "kind": "execution_failed", "channel": webhook_channel(receiver)},
         409, "already exists"),
    ]  # fmt: skip
    for body, status, words in bad:
        reply = a.post(base, body)
        assert reply.status == status and words in reply.text, reply.text
        bodies.append(reply.text)
    assert [r["name"] for r in ok(a.get(base))] == ["hook", "mail", "slack"]

    # -- read and change -----------------------------------------------------------------------
    assert ok(a.get(f"/api/alert-rules/{hook['id']}"))["name"] == "hook"
    changed = ok(a.patch(f"/api/alert-rules/{hook['id']}", {"params": {"consecutive": 3}}))
    assert changed["params"] == {"consecutive": 3}
    assert changed["channel_masked"] == hook["channel_masked"]  # the channel is kept
    reply = a.patch(f"/api/alert-rules/{hook['id']}", {"kind": "failure_rate",
                                                      "params": {"window_minutes": 0}})  # fmt: skip
    assert reply.status == 422 and "params.window_minutes" in reply.text
    assert ok(a.get(f"/api/alert-rules/{hook['id']}"))["kind"] == "execution_failed"

    # -- test alerts over the three channels -----------------------------------------------------
    receiver.clear()
    for rule in (hook, slack, mail):
        result = ok(a.post(f"/api/alert-rules/{rule['id']}/test"))
        assert result["ok"] is True and result["delivery"]["status"] == "sent", result
        assert result["delivery"]["test"] is True
    got = {r.path.split("?")[0].split("/")[1]: r for r in receiver.wait_for(2)}
    assert got["hook"].signature_ok is True
    assert got["hook"].path == f"/hook/api?token={WEBHOOK_TOKEN}"
    body = got["hook"].json()
    assert body["schema"] == "wfmon.alert/v1" and body["test"] is True
    assert body["delivery_id"] == got["hook"].headers["x-wfmon-delivery"]
    assert body["link"].endswith(f"/projects/{alice.project.id}/alerts")
    check_slack_payload(got["slack"].json())
    [message] = smtp.mailbox.messages[-1:]
    assert message.rcpt_tos == ["ops@example.com"]
    text = message.content.decode() if isinstance(message.content, bytes) else str(message.content)
    assert "[wfmon test] Test alert of rule mail" in text and "Open in wfmon: http" in text

    # -- a failing channel: the reason is stored, without the URL or its token ------------------
    port = free_port()  # nothing listens there
    down = ok(a.post(base, {"name": "down", "kind": "execution_failed", "channel": {
        "type": "webhook", "url": f"http://127.0.0.1:{port}/hook/{WEBHOOK_TOKEN}",
        "signing_secret": SIGNING_SECRET}}), 201)  # fmt: skip
    result = ok(a.post(f"/api/alert-rules/{down['id']}/test"))
    assert result["ok"] is False and result["delivery"]["reason"] == "connection refused"
    write_execution(db, execution_row(alice, status=ExecutionStatus.FAILED))
    evaluate_rules(db, base_url=alert_app.url)
    assert deliver_due(db, keyring, POLICY).failed >= 1
    log = ok(a.get(f"/api/alert-rules/{down['id']}/deliveries"))
    assert [(d["status"], d["test"]) for d in log] == [("failed", False), ("failed", True)]
    assert log[0]["reason"] == "connection refused" and log[0]["next_attempt_at"]
    project_log = ok(a.get(f"/api/projects/{alice.project.id}/alert-deliveries"))
    assert len(project_log) == 5

    # -- the page ---------------------------------------------------------------------------
    page = a.get(f"/projects/{alice.project.id}/alerts", headers={"Accept": "text/html"})
    assert page.status == 200 and "hook" in page.text and hook["channel_masked"] in page.text
    bodies.append(page.text)
    project_page = a.get(f"/projects/{alice.project.id}", headers={"Accept": "text/html"})
    assert 'id="project-alerts"' in project_page.text

    # -- another user: none of it exists ---------------------------------------------------------
    for method, path, payload in [
        ("GET", base, None),
        ("POST", base, {"name": "steal", "kind": "execution_failed",
                        "channel": webhook_channel(receiver)}),
        ("GET", f"/api/alert-rules/{hook['id']}", None),
        ("PATCH", f"/api/alert-rules/{hook['id']}", {"name": "mine"}),
        ("DELETE", f"/api/alert-rules/{hook['id']}", None),
        ("POST", f"/api/alert-rules/{hook['id']}/test", None),
        ("GET", f"/api/alert-rules/{hook['id']}/deliveries", None),
        ("GET", f"/api/projects/{alice.project.id}/alert-deliveries", None),
        ("GET", f"/projects/{alice.project.id}/alerts", None),
    ]:  # fmt: skip
        reply = b.request(method, path, payload)
        assert reply.status == 404, (method, path, reply.status, reply.text)
        bodies.append(reply.text)
    # Bob's own rules can't point at Alice's workflow either.
    reply = b.post(f"/api/projects/{bob.project.id}/alert-rules", {
        "name": "x", "kind": "execution_failed", "workflow_id": str(alice.workflow.id),
        "channel": webhook_channel(receiver)})  # fmt: skip
    assert reply.status == 404, reply.text
    assert ok(b.get(f"/api/projects/{bob.project.id}/alert-rules")) == []
    with db.as_user(bob.auth_user_id) as conn:
        from wfmon.db import alerts as stored

        assert stored.get_rule(conn, hook["id"]) is None
        assert stored.list_deliveries(conn, alice.project.id) == []
    assert ok(a.get(f"/api/alert-rules/{hook['id']}"))["name"] == "hook"  # unchanged

    # -- delete --------------------------------------------------------------------------------
    assert a.delete(f"/api/alert-rules/{down['id']}").status == 204
    assert a.get(f"/api/alert-rules/{down['id']}").status == 404

    # -- no secret anywhere: responses, logs, stored rows -----------------------------------------
    with db.as_system() as conn:
        rows = [str(r) for r in conn.execute("SELECT * FROM alert_deliveries").fetchall()]
        rules = conn.execute("SELECT * FROM alert_rules").fetchall()
    stored_text = "\n".join(rows + [str({k: v for k, v in r.items()}) for r in rules])
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "test alert of rule" in logs and "failed (attempt 1): connection refused" in logs
    for secret in secrets(receiver):
        for where, text in (("response", "\n".join(bodies)), ("log", logs),
                            ("database", stored_text)):  # fmt: skip
            assert secret not in text, f"{secret!r} found in a {where}"
        assert all(secret.encode() not in bytes(r["channel_secret_encrypted"]) for r in rules)
    assert "token=" not in logs and "/hook/" not in stored_text.replace("/hook/…", "")


def check_slack_payload(payload: dict[str, Any]) -> None:
    """Slack's documented incoming-webhook shape: ``text`` plus optional ``blocks``."""
    assert set(payload) <= {"text", "blocks"} and isinstance(payload["text"], str)
    assert payload["text"].strip()
    blocks = payload["blocks"]
    assert isinstance(blocks, list) and 0 < len(blocks) <= 50
    for block in blocks:
        assert block["type"] in SLACK_BLOCK_TYPES
        if block["type"] == "section":
            assert block["text"]["type"] in ("mrkdwn", "plain_text")
            assert 0 < len(block["text"]["text"]) <= 3000
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(e["type"] in ("mrkdwn", "plain_text", "image") for e in block["elements"])
    section = blocks[0]["text"]["text"]
    assert "|Open in wfmon>" in section and section.startswith("*[test] Test alert")


def test_smtp_errors_are_reported_without_the_password(
    alert_app: App, smtp: Smtp, people: dict[str, WorkflowOwner]
) -> None:
    a = http(alert_app, people["alice"])
    wrong = "wrong-PASSWORD-not-shown"
    rule = a.post(f"/api/projects/{people['alice'].project.id}/alert-rules", {
        "name": "bad mail", "kind": "execution_failed",
        "channel": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "security": "none",
                    "username": SMTP_USER, "password": wrong, "sender": "wfmon@example.com",
                    "recipients": ["ops@example.com"]}}).json()  # fmt: skip
    reply = a.post(f"/api/alert-rules/{rule['id']}/test")
    result = reply.json()
    assert result["ok"] is False and result["delivery"]["reason"].startswith("SMTP error 535")
    assert wrong not in reply.text
