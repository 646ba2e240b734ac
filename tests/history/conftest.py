"""History reader tests: checked-in fixture histories and the same scenarios run live.

Every scenario test runs twice (``source`` = ``fixture`` / ``live``) so the reader is
checked against the files a newcomer can open and against today's server.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.json_format import ParseDict
from temporalio.api.workflow.v1 import PendingActivityInfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HISTORIES = FIXTURES / "histories"
# The scenario workflows and runners are shared with the fixture generator, a standalone
# script in that directory; tests is not a package, so put it on the import path.
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from scenario_runs import SCENARIOS, ScenarioResult, run_all_scenarios  # noqa: E402
from temporal_harness import TemporalHarness  # noqa: E402

from wfmon.dev.services import Endpoints  # noqa: E402
from wfmon.history import HistoryReport, read_history, read_history_json  # noqa: E402


@pytest.fixture(scope="session")
def harness(endpoints: Endpoints) -> Iterator[TemporalHarness]:
    h = TemporalHarness(endpoints.temporal_address).start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="session")
def live_results(harness: TemporalHarness) -> dict[str, ScenarioResult]:
    """Every scenario, run once per session, concurrently (about 5 s)."""
    results: dict[str, ScenarioResult] = harness.run(
        run_all_scenarios(harness.client, queues=harness.queues)
    )
    return results


@functools.cache
def fixture_reports(name: str) -> list[HistoryReport]:
    """Reports of the checked-in histories of ``name`` (a chain: one per run, in order)."""
    single = HISTORIES / f"{name}.json"
    paths = [single] if single.exists() else sorted(HISTORIES.glob(f"{name}.[0-9]*.json"))
    assert paths, f"no fixture for scenario {name}: run tests/fixtures/generate_histories.py"
    pending_path = HISTORIES / f"{name}.pending.json"
    pending = (
        [ParseDict(p, PendingActivityInfo()) for p in json.loads(pending_path.read_text())]
        if pending_path.exists()
        else []
    )
    return [read_history_json(p.read_text(), pending_activities=pending) for p in paths]


def live_reports(result: ScenarioResult) -> list[HistoryReport]:
    return [read_history(h, pending_activities=result.pending_activities) for h in result.histories]


@pytest.fixture(params=["fixture", "live"])
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def reports(source: str, request: pytest.FixtureRequest) -> dict[str, list[HistoryReport]]:
    """Scenario name -> reports, from the fixture files or from this session's live runs."""
    if source == "fixture":
        return {name: fixture_reports(name) for name in SCENARIOS}
    live: dict[str, ScenarioResult] = request.getfixturevalue("live_results")
    return {name: live_reports(result) for name, result in live.items()}
