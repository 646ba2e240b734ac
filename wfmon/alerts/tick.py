"""One alert tick: evaluate every enabled rule, then send what is due.

This is all the Dagster sensor ``alerts_sensor`` (wfmon_defs/sensors.py) does, so tests and
the benchmark call the very same function. Configuration from the environment:

- ``WFMON_ALERTS_BASE_URL``: the web app's address, for links in alerts
  (default ``http://127.0.0.1:8000``);
- channel targets obey the network policy of project connections
  (``WFMON_CONNECTIONS_ALLOW_PRIVATE`` / ``WFMON_CONNECTIONS_ALLOW_LOOPBACK``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic_settings import BaseSettings, SettingsConfigDict

from wfmon.alerts.delivery import Delivered, DeliveryPolicy, deliver_due
from wfmon.alerts.evaluate import Evaluation, evaluate_rules
from wfmon.connections.crypto import Keyring
from wfmon.connections.policy import NetworkPolicy
from wfmon.db import Database


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WFMON_ALERTS_", extra="ignore")

    base_url: str = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    evaluation: Evaluation
    delivered: Delivered

    def summary(self) -> str:
        e, d = self.evaluation, self.delivered
        return (
            f"{e.rules} rule(s) evaluated: {e.pending} new alert(s), {e.suppressed} "
            f"suppressed; {d.sent} sent, {d.failed} failed"
        )


def run_tick(
    db: Database,
    keyring: Keyring,
    policy: NetworkPolicy,
    *,
    base_url: str | None = None,
    now: datetime | None = None,
    delivery: DeliveryPolicy | None = None,
) -> TickReport:
    """Evaluate the rules (as the system), then deliver what is due, including earlier
    failed deliveries whose backoff has passed."""
    url = base_url or AlertSettings().base_url
    evaluation = evaluate_rules(db, base_url=url, now=now)
    return TickReport(evaluation, deliver_due(db, keyring, policy, delivery))
