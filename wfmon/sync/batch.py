"""Sync many executions through the coordinator: what ``wfmon sync`` runs.

Discovery records the rows first (so users see them as pending at once), then the
executions go to the coordinator in chunks (``sync_many_now``), ``concurrency`` chunks at a
time; the coordinator batches them into child sync workflows under its own bound.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from temporalio.client import Client

from wfmon.sync.messages import ExecutionRef, SyncOutcome, SyncResult
from wfmon.sync.worker import sync_many_now


@dataclass
class BatchReport:
    synced: int = 0
    failed: list[SyncResult] = field(default_factory=list)
    seconds: float = 0.0


class ProgressBar:
    """A one-line progress bar on a terminal (plain lines when not a terminal)."""

    def __init__(self, total: int, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.out, self.width = total, out, width
        self.done = self.failed = 0
        self._tty = out.isatty()
        self._last_line = 0.0

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        now = time.monotonic()
        if self._tty or self.done == self.total or now - self._last_line > 2:
            self._last_line = now
            filled = self.width * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"[{bar}] {self.done}/{self.total} synced, {self.failed} failed"
            self.out.write(("\r" + line) if self._tty else line + "\n")
            if self._tty and self.done == self.total:
                self.out.write("\n")
            self.out.flush()


async def sync_many(
    client: Client,
    executions: Sequence[ExecutionRef],
    *,
    concurrency: int = 4,
    chunk: int = 100,
    on_result: Callable[[SyncResult], None] | None = None,
) -> BatchReport:
    """Sync each execution once (through the coordinator); report what happened."""
    report = BatchReport()
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async def some(refs: list[ExecutionRef]) -> None:
        async with gate:
            results = await sync_many_now(client, refs)
        for result in results:
            if result.outcome is SyncOutcome.SYNCED:
                report.synced += 1
            else:
                report.failed.append(result)
            if on_result is not None:
                on_result(result)

    refs = list(executions)
    await asyncio.gather(*(some(refs[i : i + chunk]) for i in range(0, len(refs), chunk)))
    report.seconds = time.monotonic() - started
    return report
