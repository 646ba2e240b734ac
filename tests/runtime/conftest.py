"""Runtime tests: a builder worker on its own task queue, recording attempts in memory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# The harness lives next to the fixture generator (a script directory, not a package).
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from temporal_harness import TemporalHarness  # noqa: E402

from wfmon.dev.services import Endpoints  # noqa: E402


@pytest.fixture(scope="session")
def runtime(endpoints: Endpoints) -> Iterator[TemporalHarness]:
    h = TemporalHarness(endpoints.temporal_address).start()
    try:
        yield h
    finally:
        h.stop()
