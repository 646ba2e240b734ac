"""Shared helpers for benchmarks: timing, peak memory and JSON results.

Each benchmark is a module ``bench/bench_<name>.py`` with a ``main()`` that measures a
baseline and wfmon's figure in the same run and calls :func:`write_result`. ``make bench``
runs them all; results land in ``bench/results/<name>.json`` and one table line is printed.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def timed(fn: Callable[[], Any], repeat: int = 5) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn``."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_result(name: str, figures: dict[str, Any], summary: str) -> Path:
    """Write ``bench/results/<name>.json`` and print ``summary`` as the table line."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "figures": figures,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"{name:<28} {summary}")
    return path


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
