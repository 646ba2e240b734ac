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


def percentile(values: list[float], pct: float) -> float:
    """The ``pct``-th percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed_ms(call: Callable[[], Any], repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` calls of ``call``, after one warm-up call (connections,
    caches)."""
    call()
    return [t * 1000 for t in timed(call, repeat)]


def latency_figures(values: list[float], pct: float) -> dict[str, float]:
    """p50, the ``pct``-th percentile and the minimum of ``values`` (ms), rounded."""
    return {
        "p50_ms": round(statistics.median(values), 1),
        f"p{pct:g}_ms": round(percentile(values, pct), 1),
        "min_ms": round(min(values), 1),
    }


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
