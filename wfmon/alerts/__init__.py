"""Alert rules per project with real delivery (webhook, Slack-compatible webhook, e-mail).

- :mod:`wfmon.alerts.model`: kinds, parameters, channels, the alert message;
- :mod:`wfmon.alerts.rules`: managing rules in the caller's unit of work (secrets encrypted
  with the keyring of project connections);
- :mod:`wfmon.alerts.evaluate`: what each rule finds in the synced tables;
- :mod:`wfmon.alerts.delivery`: sending with retries and backoff, and test alerts;
- :mod:`wfmon.alerts.channels`: rendering and sending over one channel;
- :mod:`wfmon.alerts.tick`: one evaluation + delivery pass (what the Dagster sensor runs).
"""

from wfmon.alerts.delivery import DeliveryPolicy, deliver_due, send_test_alert
from wfmon.alerts.errors import ChannelError, InvalidRule, RuleConflict, RuleNotFound
from wfmon.alerts.evaluate import evaluate_rule, evaluate_rules
from wfmon.alerts.model import AlertKind, ChannelType, DeliveryStatus
from wfmon.alerts.tick import TickReport, run_tick

__all__ = [
    "AlertKind",
    "ChannelError",
    "ChannelType",
    "DeliveryPolicy",
    "DeliveryStatus",
    "InvalidRule",
    "RuleConflict",
    "RuleNotFound",
    "TickReport",
    "deliver_due",
    "evaluate_rule",
    "evaluate_rules",
    "run_tick",
    "send_test_alert",
]
