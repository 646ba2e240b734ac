"""A one-line progress report of an export: rows written and rows per second."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class ExportProgress:
    """Rewrites one line on a terminal (``\\r``); writes a plain line every ``every``
    seconds otherwise. :meth:`finish` writes the final count."""

    def __init__(
        self,
        out: TextIO,
        *,
        every: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out, self.every, self.clock = out, every, clock
        self.rows = 0
        self._tty = out.isatty()
        self._start = clock()
        self._last = self._start

    def line(self) -> str:
        elapsed = max(self.clock() - self._start, 1e-9)
        return f"{self.rows:,} rows written, {self.rows / elapsed:,.0f} rows/s"

    def advance(self, rows: int) -> None:
        self.rows += rows
        now = self.clock()
        if now - self._last >= self.every:
            self._last = now
            self._write()

    def _write(self) -> None:
        self.out.write(("\r" + self.line()) if self._tty else self.line() + "\n")
        self.out.flush()

    def finish(self) -> None:
        self._write()
        if self._tty:
            self.out.write("\n")
            self.out.flush()
