"""Delivering recorded alerts, with retries and backoff, and the "send test alert" action.

Guarantees:

- a delivery is claimed (its due time pushed ``lease_seconds`` ahead) in a committed
  transaction before it is sent, so two ticks never send it at the same time, and a
  sender that dies mid-send leaves it due again after the lease: at least once, and
  exactly once unless a sender crashes between sending and recording (receivers can
  de-duplicate on ``X-Wfmon-Delivery``, the delivery id);
- a failed attempt leaves the row ``failed`` with the (scrubbed) reason and due again
  after a backoff of ``first_backoff * 2^(attempts-1)`` capped at ``max_backoff``; it is
  retried on later ticks until it is sent (nothing is lost while a channel is down) or
  ``give_up_after`` has passed since it was recorded;
- logs name deliveries and rules by id, never a channel's URL or secret.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from wfmon.alerts.channels import DEFAULT_TIMEOUT, ChannelTarget, send
from wfmon.alerts.errors import ChannelError
from wfmon.alerts.model import Alert, DeliveryStatus
from wfmon.alerts.rules import decrypt_target, load_rule_secret
from wfmon.connections.crypto import Keyring
from wfmon.connections.errors import KeyringError
from wfmon.connections.policy import NetworkPolicy
from wfmon.db import Database
from wfmon.db import alerts as stored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are retried."""

    first_backoff_seconds: float = 2.0
    max_backoff_seconds: float = 300.0
    give_up_after: timedelta = timedelta(hours=24)
    #: How long a claimed delivery is left alone by other ticks (longer than a send).
    lease_seconds: float = 60.0
    #: Most deliveries one tick sends, and how many at a time.
    batch: int = 100
    parallel: int = 8
    timeout: float = DEFAULT_TIMEOUT

    def retry_in(self, attempts: int, age: timedelta) -> float | None:
        """Seconds until the next attempt after ``attempts`` failed ones (None: give up)."""
        if age >= self.give_up_after:
            return None
        return float(
            min(self.max_backoff_seconds, self.first_backoff_seconds * 2 ** max(0, attempts - 1))
        )


@dataclass(frozen=True)
class Delivered:
    """What one delivery pass did."""

    sent: int = 0
    failed: int = 0


def _attempt(
    row: dict[str, Any], keyring: Keyring, policy: NetworkPolicy, timeout: float
) -> str | None:
    """Send one claimed delivery; None when sent, else the reason it failed."""
    try:
        target: ChannelTarget = decrypt_target(row, keyring)
    except KeyringError:
        return "the channel's secret does not decrypt (was its key removed from WFMON_SECRET_KEY?)"
    try:
        send(target, Alert.from_json(row["alert"]), str(row["id"]), policy, timeout)
    except ChannelError as exc:
        return str(exc)
    return None


def deliver_due(
    db: Database,
    keyring: Keyring,
    policy: NetworkPolicy,
    delivery: DeliveryPolicy | None = None,
) -> Delivered:
    """Send the deliveries that are due now (up to ``batch``, ``parallel`` at a time) and
    record each outcome."""
    delivery = delivery or DeliveryPolicy()
    with db.as_system() as conn:
        rows = stored.claim_due_deliveries(
            conn, limit=delivery.batch, lease_seconds=delivery.lease_seconds
        )
    if not rows:
        return Delivered()
    with ThreadPoolExecutor(max_workers=min(delivery.parallel, len(rows))) as pool:
        reasons = list(pool.map(lambda r: _attempt(r, keyring, policy, delivery.timeout), rows))
    sent = failed = 0
    now = datetime.now(UTC)
    with db.as_system() as conn:
        for row, reason in zip(rows, reasons, strict=True):
            if reason is None:
                stored.mark_sent(conn, row["id"])
                sent += 1
                log.info("alert delivery %s of rule %s sent", row["id"], row["rule_id"])
                continue
            failed += 1
            attempts = int(row["attempts"]) + 1
            retry = delivery.retry_in(attempts, now - row["created_at"])
            if retry is None:
                reason = f"{reason} (given up after {attempts} attempts)"
            stored.mark_failed(conn, row["id"], reason, retry)
            log.warning(
                "alert delivery %s of rule %s failed (attempt %d): %s; %s",
                row["id"],
                row["rule_id"],
                attempts,
                reason,
                "given up" if retry is None else f"next attempt in {retry:g} s",
            )
    return Delivered(sent=sent, failed=failed)


@dataclass(frozen=True)
class TestResult:
    """Outcome of a test alert: the delivery row recorded for it."""

    ok: bool
    delivery: dict[str, Any]


def send_test_alert(
    db: Database,
    auth_user_id: UUID,
    rule_id: UUID | str,
    *,
    keyring: Keyring,
    policy: NetworkPolicy,
    base_url: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> TestResult:
    """Send a test alert over the rule's channel now, as the caller (who must own the
    rule's project: :class:`~wfmon.alerts.errors.RuleNotFound` otherwise), and record it in
    the delivery log (``sent``, or ``failed`` with the reason). No transaction is open
    while sending."""
    with db.as_user(auth_user_id) as conn:
        row, target = load_rule_secret(conn, rule_id, keyring)
    base = base_url.rstrip("/")
    alert = Alert(
        kind=row["kind"],
        title=f"Test alert of rule {row['name']}",
        text="This is a test alert from wfmon: the channel works.",
        rule_id=row["id"],
        rule_name=row["name"],
        project_id=row["project_id"],
        project_name=row["project_name"] or "",
        occurred_at=datetime.now(UTC),
        link=f"{base}/projects/{row['project_id']}/alerts",
        test=True,
    )
    delivery_id = uuid.uuid4()
    reason: str | None = None
    try:
        send(target, alert, str(delivery_id), policy, timeout)
    except ChannelError as exc:
        reason = str(exc)
    status = DeliveryStatus.SENT if reason is None else DeliveryStatus.FAILED
    with db.as_user(auth_user_id) as conn:
        recorded = stored.record_test_delivery(
            conn,
            rule_id=row["id"],
            project_id=row["project_id"],
            delivery_id=delivery_id,
            alert=alert.to_json(),
            status=status.value,
            reason=reason,
        )
    log.info("test alert of rule %s: %s", row["id"], status.value)
    return TestResult(ok=reason is None, delivery=dict(recorded))


TestResult.__test__ = False  # type: ignore[attr-defined]  # not a pytest class
