"""Every rule kind fires exactly once for its event and not for the others; duplicates and
the quiet period are recorded as suppressed; a channel that is down gets retries and a
"failed" row with the reason, then the alert is delivered once when it is back.

Events are execution rows written with the sync's own writers; rules are evaluated with
wfmon.alerts directly; deliveries go to a real HTTP server that checks the signature.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.alerts.conftest import FAST_RETRIES, POLICY, SIGNING_SECRET, Receiver
from wfmon.alerts import deliver_due, evaluate_rules, run_tick
from wfmon.alerts.model import AlertKind, WebhookChannel
from wfmon.alerts.rules import RuleInfo, create_rule
from wfmon.connections import Keyring
from wfmon.db import Database
from wfmon.db import alerts as stored
from wfmon.db.accounts import create_workflow
from wfmon.db.rows import ComponentExecutionRow, Workflow
from wfmon.model import ComponentStatus, ExecutionStatus
from wfmon.testing import WorkflowOwner, execution_row, make_owner, write_execution

BASE = "http://wfmon.test"


def add_rule(
    db: Database,
    owner: WorkflowOwner,
    keyring: Keyring,
    receiver: Receiver,
    name: str,
    kind: AlertKind,
    params: dict[str, Any] | None = None,
    **kw: Any,
) -> RuleInfo:
    with db.as_user(owner.auth_user_id) as conn:
        return create_rule(
            conn,
            project_id=owner.project.id,
            name=name,
            kind=kind,
            params=params,
            channel=WebhookChannel(
                url=receiver.url(f"/hook/{name}"), signing_secret=SIGNING_SECRET
            ),
            keyring=keyring,
            policy=POLICY,
            **kw,
        )


def log(db: Database, owner: WorkflowOwner, rule: RuleInfo) -> list[dict[str, Any]]:
    with db.as_user(owner.auth_user_id) as conn:
        return stored.list_deliveries(conn, owner.project.id, rule_id=rule.id, limit=200)


def other_workflow(db: Database, owner: WorkflowOwner, name: str) -> Workflow:
    with db.as_user(owner.auth_user_id) as conn:
        return create_workflow(
            conn, project_id=owner.project.id, created_by=owner.user.id, name=name, definition={}
        )


def run(
    db: Database,
    owner: WorkflowOwner,
    status: ExecutionStatus,
    *,
    workflow: Workflow | None = None,
    components: list[ComponentExecutionRow] | None = None,
    **fields: Any,
) -> UUID:
    row = execution_row(owner, status=status, error_message=f"boom {status}", **fields)
    if workflow is not None:
        row = dataclasses.replace(row, workflow_id=workflow.id)
    return write_execution(db, row, components=components or [])


def component(node: str, status: ComponentStatus, *, retries: int, expected: bool) -> Any:
    return ComponentExecutionRow(
        node_id=node,
        scheduled_event_id=5,
        status=status,
        component_name="flaky",
        retry_count=retries,
        is_expected_retry=expected,
        temporal_attempt=retries + 1,
        error_message="card declined" if retries else None,
    )


def seed_failure_group(db: Database, owner: WorkflowOwner, node: str) -> None:
    """A failure group as the dbt model `failure_groups` writes it (as the system)."""
    with db.as_system() as conn:
        conn.execute(
            """
            INSERT INTO failure_groups (workflow_id, node_id, fingerprint, project_id,
                component_name, failure_type, failures, executions, first_seen, last_seen)
            VALUES (%s, %s, 'CardDeclined: card <n> declined', %s, 'flaky', 'CardDeclined',
                    1, 1, now(), now())
            """,
            (owner.workflow.id, node, owner.project.id),
        )


@pytest.fixture(scope="module")
def scenario(db: Database, keyring: Keyring, receiver: Receiver) -> dict[str, Any]:
    owner = make_owner(db, "fire")
    c = other_workflow(db, owner, "fire C")
    rules = {
        "failed": add_rule(db, owner, keyring, receiver, "failed", AlertKind.EXECUTION_FAILED),
        "streak": add_rule(
            db, owner, keyring, receiver, "streak", AlertKind.EXECUTION_FAILED, {"consecutive": 2}
        ),
        "retry": add_rule(db, owner, keyring, receiver, "retry", AlertKind.UNEXPECTED_RETRY),
        "group": add_rule(db, owner, keyring, receiver, "group", AlertKind.NEW_FAILURE_GROUP),
        "rate": add_rule(
            db,
            owner,
            keyring,
            receiver,
            "rate",
            AlertKind.FAILURE_RATE,
            {"window_minutes": 60, "threshold_percent": 50, "min_executions": 3},
            workflow_id=c.id,
        ),
        "running": add_rule(
            db,
            owner,
            keyring,
            receiver,
            "running",
            AlertKind.RUNNING_EXECUTION,
            {"max_retries": 2, "max_seconds": 3600},
        ),
    }
    return {"owner": owner, "c": c, "rules": rules}


def step(db: Database, keyring: Keyring, s: dict[str, Any]) -> dict[str, Counter[str]]:
    """One tick; then each rule's deliveries counted by status."""
    run_tick(db, keyring, POLICY, base_url=BASE, delivery=FAST_RETRIES)
    return {
        name: Counter(d["status"] for d in log(db, s["owner"], r)) for name, r in s["rules"].items()
    }


def test_each_kind_fires_once_for_its_event(
    db: Database, keyring: Keyring, receiver: Receiver, scenario: dict[str, Any]
) -> None:
    s, owner = scenario, scenario["owner"]
    receiver.clear()
    none: dict[str, Counter[str]] = {name: Counter() for name in s["rules"]}

    def expect(changes: dict[str, dict[str, int]]) -> None:
        for name, statuses in changes.items():
            none[name].update(statuses)
        assert step(db, keyring, s) == none

    # A plain success: nothing.
    run(db, owner, ExecutionStatus.COMPLETED)
    expect({})
    # A success with an unexpected retry: only the unexpected-retry rule.
    run(
        db,
        owner,
        ExecutionStatus.COMPLETED,
        components=[component("charge", ComponentStatus.COMPLETED, retries=1, expected=False)],
    )
    expect({"retry": {"sent": 1}})
    # Expected retries are not unexpected.
    run(
        db,
        owner,
        ExecutionStatus.COMPLETED,
        components=[component("fetch", ComponentStatus.COMPLETED, retries=2, expected=True)],
    )
    expect({})
    # First failure: "any failure" fires, "2 in a row" not yet.
    first = run(db, owner, ExecutionStatus.FAILED)
    expect({"failed": {"sent": 1}})
    # A timeout counts as a failure (the vocabulary): the streak reaches 2.
    run(db, owner, ExecutionStatus.TIMED_OUT)
    expect({"failed": {"sent": 1}, "streak": {"sent": 1}})
    # The third in a row is the same streak: suppressed as a duplicate.
    run(db, owner, ExecutionStatus.TERMINATED)
    expect({"failed": {"sent": 1}, "streak": {"suppressed": 1}})
    # Canceled is not a failure (and ends the streak).
    run(db, owner, ExecutionStatus.CANCELED)
    expect({})
    # A new failure group appears.
    seed_failure_group(db, owner, "charge")
    expect({"group": {"sent": 1}})
    # Running executions: one retrying too often, one running too long.
    run(
        db,
        owner,
        ExecutionStatus.RUNNING,
        components=[component("charge", ComponentStatus.RETRYING, retries=3, expected=True)],
    )
    run(db, owner, ExecutionStatus.RUNNING, started_at=datetime.now(UTC) - timedelta(hours=2))
    expect({"running": {"sent": 2}})
    # Workflow C: 1 success then 2 failures = 67% > 50% over 3 executions.
    run(db, owner, ExecutionStatus.COMPLETED, workflow=s["c"])
    run(db, owner, ExecutionStatus.FAILED, workflow=s["c"])
    expect({"failed": {"sent": 1}})
    run(db, owner, ExecutionStatus.FAILED, workflow=s["c"])
    expect({"failed": {"sent": 1}, "streak": {"sent": 1}, "rate": {"sent": 1}})
    # Nothing new: nothing more, however often the rules are evaluated.
    expect({})
    expect({})

    sent = sum(c["sent"] for c in none.values())
    got = receiver.wait_for(sent)
    assert len(got) == sent and all(r.signature_ok for r in got)
    by_rule = Counter(r.path.removeprefix("/hook/") for r in got)
    assert by_rule == {name: c["sent"] for name, c in none.items() if c["sent"]}
    # The body follows the documented schema and links to the execution.
    bodies = [r.json() for r in got]
    failed = next(b for b in bodies if (b["execution"] or {}).get("id") == str(first))
    assert failed["schema"] == "wfmon.alert/v1" and failed["kind"] == "execution_failed"
    assert failed["link"] == f"{BASE}/executions/{first}"
    assert failed["rule"]["name"] == "failed" and failed["project"]["id"] == str(owner.project.id)
    assert got[0].headers["x-wfmon-delivery"]
    # The suppressed row says why.
    streak = log(db, owner, s["rules"]["streak"])
    assert [d["reason"] for d in streak if d["status"] == "suppressed"] == [
        "duplicate of an alert already delivered"
    ]


def test_quiet_period_suppresses_the_rules_next_alerts(
    db: Database, keyring: Keyring, receiver: Receiver
) -> None:
    owner = make_owner(db, "quiet")
    rule = add_rule(
        db, owner, keyring, receiver, "quiet", AlertKind.EXECUTION_FAILED, quiet_period_seconds=3600
    )
    run(db, owner, ExecutionStatus.FAILED)
    run(db, owner, ExecutionStatus.FAILED)
    evaluate_rules(db, base_url=BASE)
    rows = log(db, owner, rule)
    assert Counter(d["status"] for d in rows) == {"pending": 1, "suppressed": 1}
    assert {d["reason"] for d in rows} == {None, "inside the rule's quiet period"}


def test_a_channel_that_is_down_is_retried_and_nothing_is_lost(
    db: Database, keyring: Keyring, receiver: Receiver
) -> None:
    owner = make_owner(db, "down")
    rule = add_rule(db, owner, keyring, receiver, "down", AlertKind.EXECUTION_FAILED)
    receiver.clear()
    receiver.failing = True
    try:
        run(db, owner, ExecutionStatus.FAILED)
        evaluate_rules(db, base_url=BASE)
        for attempt in (1, 2, 3):
            [row] = log(db, owner, rule)
            wait_due(row)
            assert deliver_due(db, keyring, POLICY, FAST_RETRIES).failed >= 1
            [row] = log(db, owner, rule)
            assert (row["status"], row["attempts"]) == ("failed", attempt)
            assert row["reason"] == "the webhook answered HTTP 503"
            assert row["next_attempt_at"] is not None
    finally:
        receiver.failing = False
    # Backed off: due later than the first retry.
    assert row["next_attempt_at"] - row["updated_at"] >= timedelta(seconds=0.15)
    wait_due(row)
    deliver_due(db, keyring, POLICY, FAST_RETRIES)
    [row] = log(db, owner, rule)
    assert (row["status"], row["attempts"], row["reason"]) == ("sent", 4, None)
    assert len([r for r in receiver.wait_for(1) if r.path == "/hook/down"]) == 1
    # Sent is final.
    deliver_due(db, keyring, POLICY, FAST_RETRIES)
    assert len([r for r in receiver.received if r.path == "/hook/down"]) == 1


def wait_due(row: dict[str, Any]) -> None:
    import time

    delay = (row["next_attempt_at"] - datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(min(delay + 0.01, 1.0))


def test_a_disabled_rules_alerts_wait_until_it_is_enabled(
    db: Database, keyring: Keyring, receiver: Receiver
) -> None:
    from wfmon.alerts.rules import update_rule

    owner = make_owner(db, "muted")
    rule = add_rule(db, owner, keyring, receiver, "muted", AlertKind.EXECUTION_FAILED)
    run(db, owner, ExecutionStatus.FAILED)
    evaluate_rules(db, base_url=BASE)
    for enabled, status in ((False, "pending"), (True, "sent")):
        with db.as_user(owner.auth_user_id) as conn:
            update_rule(conn, rule.id, keyring=keyring, changes={"enabled": enabled})
        deliver_due(db, keyring, POLICY, FAST_RETRIES)
        assert [d["status"] for d in log(db, owner, rule)] == [status]
