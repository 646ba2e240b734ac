"""Export throughput and memory: ``GET /api/export/components.{csv,jsonl,parquet}`` of
1,000,000 component rows vs the raw server-side cursor read of the same rows.

Measured in one run on embedded services, with the data set of :mod:`bench.debug_data`
(generated server-side; one of its two users owns half of the rows, so twice the wanted
rows are generated):

- baseline: :func:`wfmon.db.export.iter_export_batches` in this process, under the same
  user's RLS, rows fetched and dropped (no formatting, no HTTP);
- copy_plain: the same rows as plain COPY CSV (what Parquet reads,
  :func:`wfmon.db.export.iter_export_copy`) in this process, dropped: PostgreSQL's and
  the COPY protocol's share before any writer;
- each format: the app as ``wfmon serve`` in its own process, the file streamed over HTTP
  and dropped by the client; rows/s, the ratio to the baseline, and the app process's
  resident memory (``VmRSS`` sampled every 20 ms from ``/proc/<pid>/status``, and
  ``VmHWM``) grown over what it held before the export.

Targets: >= 100,000 rows/s and < 200 MB RSS growth per format. Knob:
``WFMON_BENCH_EXPORT_ROWS`` (rows exported, default 1,000,000). :func:`measure` runs the
measurements on a database that already holds the data set (generating it takes minutes).
"""

from __future__ import annotations

import http.client
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.bench_api import SECRET, AppProcess
from bench.common import write_result
from bench.debug_data import generate
from tests.conftest import make_state_dir
from wfmon.api.jwt import dev_token
from wfmon.db import Database
from wfmon.db.export import (
    ExportFilter,
    count_export_rows,
    iter_export_batches,
    iter_export_copy,
)
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations

FORMATS = ("csv", "jsonl", "parquet")
TARGET_ROWS_PER_S = 100_000
TARGET_RSS_GROWTH_MB = 200


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class RssSampler:
    """The highest VmRSS of a process while the block runs (sampled every ``every`` s)."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every = pid, every
        self.before_kb = _status_kb(pid, "VmRSS")
        self.peak_kb = self.before_kb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmRSS"))
            time.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmRSS"))


def baseline(db: Database, auth: UUID) -> dict[str, Any]:
    t0 = time.perf_counter()
    rows = 0
    with db.as_user(auth) as conn:
        for batch in iter_export_batches(conn, "components", ExportFilter()):
            rows += len(batch)
    seconds = time.perf_counter() - t0
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def copy_plain(db: Database, auth: UUID) -> dict[str, Any]:
    """The same rows as plain COPY CSV (what Parquet reads), in this process, dropped: what
    PostgreSQL and the COPY protocol cost before any writer."""
    t0 = time.perf_counter()
    rows = 0
    with db.as_user(auth) as conn:
        for batch in iter_export_copy(conn, "components", ExportFilter(), "arrow"):
            rows += len(batch)
    seconds = time.perf_counter() - t0
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def http_export(server: AppProcess, token: str, fmt: str, rows: int) -> dict[str, Any]:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    with RssSampler(server.proc.pid) as rss:
        t0 = time.perf_counter()
        conn.request(
            "GET", f"/api/export/components.{fmt}", headers={"Authorization": f"Bearer {token}"}
        )
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"export {fmt}: HTTP {resp.status} {resp.read()[:300]!r}")
        size = 0
        lines = 0
        while chunk := resp.read(1 << 20):
            size += len(chunk)
            if fmt == "jsonl":
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - t0
    conn.close()
    if fmt == "jsonl" and lines != rows:
        raise RuntimeError(f"jsonl export has {lines} lines, expected {rows}")
    return {
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "mb": round(size / 1e6, 1),
        "rss_before_mb": round(rss.before_kb / 1024, 1),
        "rss_peak_mb": round(rss.peak_kb / 1024, 1),
        "rss_growth_mb": round((rss.peak_kb - rss.before_kb) / 1024, 1),
        "vmhwm_mb": round(_status_kb(server.proc.pid, "VmHWM") / 1024, 1),
    }


def _bench(db: Database, endpoints: Any) -> dict[str, Any]:
    wanted = int(os.environ.get("WFMON_BENCH_EXPORT_ROWS", "1000000"))
    t0 = time.perf_counter()
    data = generate(
        db,
        executions=max(2, wanted // 50),
        components=2 * wanted,
        attempts=1000,
        owner_url=endpoints.migrations_url,
    )
    f: dict[str, Any] = {"generate_seconds": round(time.perf_counter() - t0, 1)}
    return f | measure(
        db, endpoints.web_database_url, endpoints.temporal_address, data.users[0].auth_user_id
    )


def measure(
    db: Database, web_database_url: str, temporal_address: str, auth: UUID
) -> dict[str, Any]:
    """The baselines and every format's export of ``auth``'s component rows."""
    f: dict[str, Any] = {}
    with db.as_user(auth) as conn:
        rows = count_export_rows(conn, "components", ExportFilter())
    f["rows"] = rows
    f["baseline_cursor"] = baseline(db, auth)
    f["copy_plain"] = copy_plain(db, auth)
    token = dev_token(str(auth), SECRET)
    server = AppProcess(web_database_url, temporal_address)
    try:
        # Warm the app (imports, pool, pyarrow) so its resting RSS is what growth is
        # measured on: a small export of executions in each format.
        host, port = server.url.removeprefix("http://").split(":")
        for fmt in FORMATS:
            warm = http.client.HTTPConnection(host, int(port), timeout=600)
            warm.request(
                "GET", f"/api/export/executions.{fmt}", headers={"Authorization": f"Bearer {token}"}
            )
            warm.getresponse().read()
            warm.close()
        for fmt in FORMATS:
            r = http_export(server, token, fmt, rows)
            r["ratio_to_baseline"] = round(r["rows_per_s"] / f["baseline_cursor"]["rows_per_s"], 2)
            r["meets_targets"] = (
                r["rows_per_s"] >= TARGET_ROWS_PER_S and r["rss_growth_mb"] < TARGET_RSS_GROWTH_MB
            )
            f[fmt] = r
    finally:
        server.stop()
    return f


def main() -> None:
    state = make_state_dir("wfmon-bench-export-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        with Database(endpoints.database_url, max_size=4) as db:
            f = _bench(db, endpoints)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    parts = [
        f"{fmt} {f[fmt]['rows_per_s'] / 1000:.0f}k rows/s "
        f"(x{f[fmt]['ratio_to_baseline']}, +{f[fmt]['rss_growth_mb']:.0f} MB)"
        for fmt in FORMATS
    ]
    write_result(
        "export",
        f,
        f"{f['rows']:,} component rows: cursor {f['baseline_cursor']['rows_per_s'] / 1000:.0f}k "
        f"rows/s; " + "; ".join(parts),
    )


if __name__ == "__main__":
    main()
