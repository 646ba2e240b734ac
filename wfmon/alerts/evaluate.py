"""Evaluating alert rules against the synced tables (as the system).

Each rule is evaluated in its own transaction, holding a lock on the rule row (a
concurrent tick skips it). What a rule looks at:

- ``execution_failed``, ``unexpected_retry``: execution rows written (``updated_at``)
  since the rule's watermark minus :data:`OVERLAP` (a sync transaction that started before
  the previous tick but committed after it is still seen), never before the rule existed;
- ``new_failure_group``: failure groups first seen after the rule was created, (re)built
  since the watermark;
- ``failure_rate``, ``running_execution``: the current state (executions closed in the
  window, running executions).

Every finding is a :class:`~wfmon.alerts.model.Candidate` with an ``event_key`` (looked at
once per rule: looking again is a no-op) and a ``dedupe_key`` (its subject: alerted once
per rule; a later event about the same subject is recorded as suppressed). Both are
enforced by unique indexes (migrations/0500), not by this code's memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from wfmon.alerts.model import Alert, AlertKind, Candidate
from wfmon.db import Database, DbConnection
from wfmon.db import alerts as stored

#: How far before its watermark each evaluation of a rule looks again.
OVERLAP: Final = timedelta(minutes=5)
_MAX_TEXT: Final = 500


@dataclass(frozen=True)
class RuleScan:
    """A locked rule, as the evaluator sees it."""

    row: dict[str, Any]
    now: datetime
    since: datetime
    base_url: str

    @property
    def id(self) -> UUID:
        return self.row["id"]  # type: ignore[no-any-return]

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.row["params"] or {})

    def alert(self, title: str, text: str, **fields: Any) -> Alert:
        return Alert(
            kind=self.row["kind"],
            title=title,
            text=_cut(text),
            rule_id=self.id,
            rule_name=self.row["name"],
            project_id=self.row["project_id"],
            project_name=self.row["project_name"] or "",
            occurred_at=fields.pop("occurred_at", None) or self.now,
            **fields,
        )

    def execution_link(self, execution_id: UUID | None) -> str | None:
        return None if execution_id is None else f"{self.base_url}/executions/{execution_id}"


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _status_words(status: str) -> str:
    return str(status).replace("_", " ")


def _execution_fields(scan: RuleScan, r: dict[str, Any]) -> dict[str, Any]:
    return {
        "workflow_id": r["workflow_id"],
        "workflow_name": r["workflow_name"],
        "execution_id": r["execution_id"],
        "temporal_workflow_id": r["temporal_workflow_id"],
        "status": r["status"],
        "link": scan.execution_link(r["execution_id"]),
    }


def _failed(conn: DbConnection, scan: RuleScan) -> list[Candidate]:
    need = int(scan.params.get("consecutive", 1))
    rows = stored.failed_executions(
        conn, scan.row["project_id"], scan.row["workflow_id"], scan.since
    )
    out = []
    for r in rows:
        streak = int(r["streak"] or 1)
        if streak < need:
            continue
        name = r["workflow_name"] or r["temporal_workflow_id"]
        title = f"{name} {_status_words(r['status'])}"
        if need > 1:
            title += f" {streak} times in a row"
        text = f"Execution {r['temporal_workflow_id']} {_status_words(r['status'])}"
        text += f": {r['error_message']}" if r["error_message"] else "."
        # One alert per failure; with N in a row, one per streak (its first failure).
        subject = f"failed:{r['execution_id']}" if need == 1 else f"streak:{r['streak_start']}"
        out.append(
            Candidate(
                event_key=f"failed:{r['execution_id']}",
                dedupe_key=subject,
                alert=scan.alert(
                    title,
                    text,
                    occurred_at=r["closed_at"],
                    facts={"consecutive failures": streak} if need > 1 else {},
                    **_execution_fields(scan, r),
                ),
            )
        )
    return out


def _unexpected(conn: DbConnection, scan: RuleScan) -> list[Candidate]:
    rows = stored.unexpected_retry_executions(
        conn, scan.row["project_id"], scan.row["workflow_id"], scan.since
    )
    out = []
    for r in rows:
        name = r["workflow_name"] or r["temporal_workflow_id"]
        text = (
            f"Node {r['node_id']} retried {r['retry_count']} time(s) although its retry "
            "policy did not expect it"
        )
        if r["component_error"]:
            text += f": {r['component_error']}"
        key = f"unexpected:{r['execution_id']}"
        out.append(
            Candidate(
                event_key=key,
                dedupe_key=key,
                alert=scan.alert(
                    f"Unexpected retry in {name}",
                    text,
                    facts={"node": r["node_id"], "retries": r["retry_count"]},
                    **_execution_fields(scan, r),
                ),
            )
        )
    return out


def _new_groups(conn: DbConnection, scan: RuleScan) -> list[Candidate]:
    rows = stored.new_failure_groups(
        conn,
        scan.row["project_id"],
        scan.row["workflow_id"],
        scan.row["created_at"],
        scan.since,
    )
    out = []
    for r in rows:
        digest = hashlib.sha256(r["fingerprint"].encode()).hexdigest()[:16]
        key = f"group:{r['workflow_id']}:{r['node_id']}:{digest}"
        out.append(
            Candidate(
                event_key=key,
                dedupe_key=key,
                alert=scan.alert(
                    f"New failure group in {r['workflow_name'] or r['workflow_id']}",
                    f"Node {r['node_id']}: {r['fingerprint']}",
                    occurred_at=r["first_seen"],
                    workflow_id=r["workflow_id"],
                    workflow_name=r["workflow_name"],
                    execution_id=r["execution_id"],
                    link=f"{scan.base_url}/workflows/{r['workflow_id']}/failures",
                    facts={"node": r["node_id"], "failures": r["failures"]},
                ),
            )
        )
    return out


def _rate(conn: DbConnection, scan: RuleScan) -> list[Candidate]:
    p = scan.params
    window = timedelta(minutes=int(p["window_minutes"]))
    threshold = float(p["threshold_percent"])
    rows = stored.failure_rates(
        conn, scan.row["project_id"], scan.row["workflow_id"], scan.now - window
    )
    # At most one alert per workflow and window-long period while the rate stays above.
    period = int(scan.now.timestamp() // window.total_seconds())
    out = []
    for r in rows:
        runs, failures = int(r["executions"]), int(r["failures"])
        if runs < int(p["min_executions"]) or failures * 100 <= threshold * runs:
            continue
        rate = failures * 100 / runs
        latest = r["latest_failed_id"] or r["latest_id"]
        out.append(
            Candidate(
                event_key=f"rate:{r['workflow_id']}:{r['latest_id']}",
                dedupe_key=f"rate:{r['workflow_id']}:{period}",
                alert=scan.alert(
                    f"{r['workflow_name']}: {rate:.0f}% of executions failed",
                    f"{failures} of {runs} executions closed in the last "
                    f"{p['window_minutes']} min failed (threshold {threshold:g}%).",
                    workflow_id=r["workflow_id"],
                    workflow_name=r["workflow_name"],
                    execution_id=latest,
                    link=f"{scan.base_url}/workflows/{r['workflow_id']}?tab=executions",
                    facts={"failure rate %": round(rate, 1), "executions": runs},
                ),
            )
        )
    return out


def _running(conn: DbConnection, scan: RuleScan) -> list[Candidate]:
    p = scan.params
    rows = stored.running_executions(conn, scan.row["project_id"], scan.row["workflow_id"])
    out = []
    for r in rows:
        name = r["workflow_name"] or r["temporal_workflow_id"]
        fields = _execution_fields(scan, r)
        retries = int(r["retries"] or 0)
        if p.get("max_retries") is not None and retries > int(p["max_retries"]):
            key = f"retries:{r['execution_id']}"
            out.append(
                Candidate(
                    event_key=key,
                    dedupe_key=key,
                    alert=scan.alert(
                        f"{name} is retrying: {retries} retries of node {r['node_id']}",
                        f"Running execution {r['temporal_workflow_id']}: node {r['node_id']} "
                        f"retried {retries} times (limit {p['max_retries']}).",
                        facts={"node": r["node_id"], "retries": retries},
                        **fields,
                    ),
                )
            )
        running_for = scan.now - r["started_at"]
        if p.get("max_seconds") is not None and running_for.total_seconds() > p["max_seconds"]:
            key = f"long:{r['execution_id']}"
            minutes = running_for.total_seconds() / 60
            out.append(
                Candidate(
                    event_key=key,
                    dedupe_key=key,
                    alert=scan.alert(
                        f"{name} has been running for {minutes:.0f} min",
                        f"Execution {r['temporal_workflow_id']} started "
                        f"{r['started_at'].isoformat()} and is still running "
                        f"(limit {p['max_seconds']} s).",
                        facts={"running minutes": round(minutes, 1)},
                        **fields,
                    ),
                )
            )
    return out


_FINDERS: Final[dict[AlertKind, Callable[[DbConnection, RuleScan], list[Candidate]]]] = {
    AlertKind.EXECUTION_FAILED: _failed,
    AlertKind.UNEXPECTED_RETRY: _unexpected,
    AlertKind.NEW_FAILURE_GROUP: _new_groups,
    AlertKind.FAILURE_RATE: _rate,
    AlertKind.RUNNING_EXECUTION: _running,
}


@dataclass(frozen=True)
class Evaluation:
    """What evaluating the rules recorded."""

    rules: int = 0
    pending: int = 0
    suppressed: int = 0


def evaluate_rule(
    db: Database, rule_id: UUID, *, base_url: str, now: datetime | None = None
) -> Evaluation:
    """Evaluate one rule and record what it found (one transaction as the system); returns
    how many deliveries were recorded as pending and as suppressed. A rule that is gone,
    disabled or being evaluated elsewhere is skipped (``rules == 0``)."""
    with db.as_system() as conn:
        row = stored.lock_rule_for_scan(conn, rule_id)
        if row is None:
            return Evaluation()
        db_now = stored.database_now(conn)
        scan = RuleScan(
            row=dict(row),
            now=now or db_now,
            since=max(row["scanned_until"] - OVERLAP, row["created_at"]),
            base_url=base_url.rstrip("/"),
        )
        pending = suppressed = 0
        for c in _FINDERS[AlertKind(row["kind"])](conn, scan):
            got = stored.record_delivery(
                conn,
                rule_id=scan.id,
                project_id=row["project_id"],
                event_key=c.event_key,
                dedupe_key=c.dedupe_key,
                alert=c.alert.to_json(),
                execution_id=c.alert.execution_id,
                quiet_period_seconds=row["quiet_period_seconds"],
            )
            if got is None:
                continue
            if got["status"] == "pending":
                pending += 1
            else:
                suppressed += 1
        stored.set_scanned_until(conn, scan.id)
    return Evaluation(rules=1, pending=pending, suppressed=suppressed)


def evaluate_rules(db: Database, *, base_url: str, now: datetime | None = None) -> Evaluation:
    """Evaluate every enabled rule (see :func:`evaluate_rule`)."""
    with db.as_system() as conn:
        ids = stored.enabled_rule_ids(conn)
    total = Evaluation()
    for rule_id in ids:
        e = evaluate_rule(db, rule_id, base_url=base_url, now=now)
        total = Evaluation(
            total.rules + e.rules, total.pending + e.pending, total.suppressed + e.suppressed
        )
    return total
