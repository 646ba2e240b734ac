"""The Dagster sensor ``alerts_sensor`` (the definition the code location serves), run once
through ``build_sensor_context`` with its real resources: it evaluates the rules and
delivers to a real webhook receiver."""

from __future__ import annotations

import dagster as dg
import pytest

from resources.connections import ProjectConnectionsResource
from resources.database import WfmonDatabaseResource
from tests.alerts.conftest import KEYRING, POLICY, SIGNING_SECRET, Receiver
from wfmon.alerts.model import AlertKind, WebhookChannel
from wfmon.alerts.rules import create_rule
from wfmon.connections import Keyring
from wfmon.db import Database
from wfmon.model import ExecutionStatus
from wfmon.testing import execution_row, make_owner, write_execution
from wfmon_defs.definitions import build_definitions


def test_alerts_sensor_evaluates_and_delivers(
    db: Database,
    database_url: str,
    keyring: Keyring,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sensor reads the network policy from the environment, as in production.
    monkeypatch.setenv("WFMON_CONNECTIONS_ALLOW_LOOPBACK", "true")
    owner = make_owner(db, "sensor")
    with db.as_user(owner.auth_user_id) as conn:
        create_rule(
            conn, project_id=owner.project.id, name="sensor", kind=AlertKind.EXECUTION_FAILED,
            params=None, keyring=keyring, policy=POLICY,
            channel=WebhookChannel(url=receiver.url("/hook/sensor"), signing_secret=SIGNING_SECRET),
        )  # fmt: skip
    execution = write_execution(db, execution_row(owner, status=ExecutionStatus.FAILED))

    sensor = build_definitions(database_url=database_url).get_sensor_def("alerts_sensor")
    assert sensor.minimum_interval_seconds == 5
    database = WfmonDatabaseResource(url=database_url)
    with dg.build_sensor_context(
        resources={
            "database": database,
            "connections": ProjectConnectionsResource(database=database, secret_key=KEYRING),
        }
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SkipReason)
    assert "1 sent" in (result.skip_message or "")
    [got] = [r for r in receiver.wait_for(1) if r.path == "/hook/sensor"]
    assert got.signature_ok and got.json()["execution"]["id"] == str(execution)
