"""Shared helpers for benchmarks: timing, peak memory and JSON results.

Each benchmark is a module ``bench/bench_<name>.py`` with a ``main()`` that measures a
baseline and wfmon's figure in the same run and calls :func:`write_result`. ``make bench``
runs them all; results land in ``bench/results/<name>.json`` and one table line is printed.
"""

from __future__ import annotations

import json
import os
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


# -- CPU from /proc ------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The fields after the command name (which may hold spaces and parentheses).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), seconds."""
    f = _stat_fields(pid)
    return (int(f[11]) + int(f[12])) / _CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root``, of its children that exited (cutime + cstime) and of its
    live children: PostgreSQL's postmaster with every backend, or a web app's supervisor
    with its workers."""
    f = _stat_fields(root)
    total = sum(int(x) for x in f[11:15]) / _CLOCK_TICKS
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat_fields(int(entry.name))
        except OSError:  # gone meanwhile
            continue
        if int(child[1]) == root:
            total += (int(child[11]) + int(child[12])) / _CLOCK_TICKS
    return total
