"""The alert vocabulary equals the migration's CHECK constraints; parameters are validated
with clear messages; reasons and masks never carry a secret."""

from __future__ import annotations

import re

import pytest

from wfmon.alerts.channels import mask_http_url, scrub
from wfmon.alerts.errors import InvalidRule
from wfmon.alerts.model import AlertKind, ChannelType, DeliveryStatus, parse_params
from wfmon.db import Database


def _check_values(db: Database, table: str, column: str) -> set[str]:
    with db.as_system() as conn:
        rows = conn.execute(
            "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'c'",
            (table,),
        ).fetchall()
    [definition] = [r["def"] for r in rows if f"({column} = ANY" in r["def"]]
    return set(re.findall(r"'([a-z_]+)'::text", definition))


def test_vocabulary_is_the_migrations(db: Database) -> None:
    assert _check_values(db, "alert_rules", "kind") == {k.value for k in AlertKind}
    assert _check_values(db, "alert_rules", "channel_type") == {c.value for c in ChannelType}
    assert _check_values(db, "alert_deliveries", "status") == {s.value for s in DeliveryStatus}


def test_params_are_validated_and_defaulted() -> None:
    assert parse_params(AlertKind.FAILURE_RATE, {"threshold_percent": 10}) == {
        "window_minutes": 60, "threshold_percent": 10, "min_executions": 5}  # fmt: skip
    with pytest.raises(InvalidRule, match=r"params\.threshold_percent: .*less than 100"):
        parse_params(AlertKind.FAILURE_RATE, {"threshold_percent": 100})
    with pytest.raises(InvalidRule, match="set max_retries, max_seconds or both"):
        parse_params(AlertKind.RUNNING_EXECUTION, {})
    with pytest.raises(InvalidRule, match=r"params\.extra"):
        parse_params(AlertKind.UNEXPECTED_RETRY, {"extra": 1})


def test_scrub_and_mask_drop_urls_and_secrets() -> None:
    url = "https://user:pw@hooks.example.com:8443/services/T0/B0/SECRET?token=abc"
    text = f"POST {url} failed: 'hunter2' rejected"
    cleaned = scrub(text, ["hunter2"])
    assert cleaned == "POST <url> failed: '***' rejected"
    assert mask_http_url(url) == "https://hooks.example.com:8443/…"
    assert len(scrub("x" * 1000)) == 300
