"""Export throughput and memory: ``GET /api/export/components.{csv,jsonl,parquet}`` of
1,000,000 component rows, against what PostgreSQL alone emits for the same rows.

Measured in one run on embedded services, with the data set of :mod:`bench.debug_data`
(generated server-side; one of its two users owns half of the rows, so twice the wanted
rows are generated):

- floor (``floor_rls``): PostgreSQL's own plain COPY of the same rows and columns
  (:func:`wfmon.db.export.export_copy_statement`, format ``arrow``: what Parquet reads)
  under the same user's RLS, sent to ``psql`` writing to ``/dev/null`` (a C client that
  costs next to nothing): the most any export of these rows could do on this machine.
  ``floor_no_rls``: the same COPY as the superuser (no RLS), the same rows picked by the
  user's project; ``format_copy``: each format's own COPY statement the same way (what
  PostgreSQL alone costs for that format);
- baseline: :func:`wfmon.db.export.iter_export_batches` in this process, under the same
  user's RLS, rows fetched and dropped (no formatting, no HTTP);
- each format: the app as ``wfmon serve --workers 1`` (one process: the API process whose
  memory is measured) in its own process, the file streamed over HTTP and dropped by the
  client; rows/s, the ratio to the floor and to the baseline, the resident memory of the
  app process (``VmRSS`` sampled every 20 ms from ``/proc/<pid>/status``, and ``VmHWM``)
  grown over what it held before the export, and CPU per row of the app process and of
  PostgreSQL (all its processes, from ``/proc``): CPU per row does not depend on what
  else runs on the machine, rows/s does.

Targets: >= 100,000 rows/s and < 200 MB RSS growth per format; where 100,000 rows/s is
beyond the floor of the machine, the figure that says how close an export gets is its
ratio to the floor (``ratio_to_floor``). ``load_average`` (1 min) is recorded next to
every timed figure. Knob: ``WFMON_BENCH_EXPORT_ROWS`` (rows exported, default
1,000,000). :func:`measure` runs the measurements on a database that already holds the
data set (generating it takes minutes).
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from bench.bench_api import SECRET, AppProcess
from bench.common import process_cpu_seconds, tree_cpu_seconds, write_result
from bench.debug_data import generate
from tests.conftest import make_state_dir
from wfmon.api.jwt import dev_token
from wfmon.db import Database
from wfmon.db.export import (
    CopyFormat,
    ExportFilter,
    count_export_rows,
    export_copy_statement,
    iter_export_batches,
    iter_export_copy,
)
from wfmon.dev.postgres import BIN, PostgresInstance
from wfmon.dev.services import EmbeddedServices, Service
from wfmon.export import ExportFormat
from wfmon.export.writers import COPY_FORMATS
from wfmon.migrate import apply_migrations, libpq_url

FORMATS = ("csv", "jsonl", "parquet")
#: The CopyFormat each format's export reads.
COPY_OF: dict[str, CopyFormat] = {fmt: COPY_FORMATS[ExportFormat(fmt)] for fmt in FORMATS}
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


def _load() -> float:
    return round(os.getloadavg()[0], 1)


class CpuMeter:
    """CPU seconds that PostgreSQL and (optionally) one more process spent in the block."""

    def __init__(self, postmaster: int | None, app: int | None = None) -> None:
        self.postmaster, self.app = postmaster, app
        self.postgres_s = self.app_s = 0.0

    def _read(self) -> tuple[float, float]:
        pg = tree_cpu_seconds(self.postmaster) if self.postmaster else 0.0
        return pg, (process_cpu_seconds(self.app) if self.app else 0.0)

    def __enter__(self) -> CpuMeter:
        self._start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)  # an exited backend's CPU is counted once the postmaster reaps it
        pg, app = self._read()
        self.postgres_s, self.app_s = pg - self._start[0], app - self._start[1]

    def per_row(self, rows: int) -> dict[str, float]:
        out = {"postgres_cpu_us_per_row": round(self.postgres_s / max(rows, 1) * 1e6, 2)}
        if self.app:
            out["app_cpu_us_per_row"] = round(self.app_s / max(rows, 1) * 1e6, 2)
        return out


#: libpq's environment variable for each connection parameter psql is given.
_PG_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
}


def psql_copy(url: str, setup: str, statement: str) -> None:
    """Run ``statement`` (a COPY ... TO STDOUT) in one transaction after ``setup`` with
    ``psql``, its output to /dev/null. The connection goes in psql's environment, not its
    command line (which any local user can read)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    env = {**os.environ, **{_PG_ENV[k]: str(v) for k, v in params.items() if k in _PG_ENV}}
    script = f"BEGIN;\n{setup}\n{statement};\nCOMMIT;\n"
    subprocess.run(
        [str(BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null"],
        input=script.encode(),
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )


def _timed_rows(rows: int, postmaster: int | None, run: Callable[[], None]) -> dict[str, Any]:
    load = _load()
    with CpuMeter(postmaster) as cpu:
        t0 = time.perf_counter()
        run()
        seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        **cpu.per_row(rows),
        "load_average": load,
    }


def floors(
    db: Database,
    auth: UUID,
    project_id: UUID,
    rows: int,
    *,
    app_url: str,
    superuser_url: str,
    postmaster: int | None,
) -> tuple[dict[str, Any], Callable[[], None]]:
    """PostgreSQL alone: the plain COPY of the rows under the user's RLS (the floor) and
    as the superuser without RLS (same rows: the user's project), then each format's own
    COPY under RLS; all read by ``psql`` into /dev/null. Also returns the floor's run, to
    measure it again next to each export."""
    with db.as_user(auth) as conn:

        def text(fmt: CopyFormat, f: ExportFilter) -> str:
            # psql gets the statement with its parameters bound (as COPY takes them).
            statement, params = export_copy_statement("components", f, fmt)
            return psycopg.ClientCursor(conn).mogrify(statement, params or None)

        plain = text("arrow", ExportFilter())
        plain_project = text("arrow", ExportFilter(project_id=project_id))
        formats = {fmt: text(COPY_OF[fmt], ExportFilter()) for fmt in FORMATS}
    session = "SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO', true);"
    as_user = (
        f"SELECT set_config('role', 'wfmon_user', true), "
        f"set_config('request.jwt.claim.sub', '{auth}', true), "
        f"set_config('search_path', 'public, pg_temp', true);\n{session}"
    )
    floor = partial(psql_copy, app_url, as_user, plain)
    out: dict[str, Any] = {
        "floor_rls": _timed_rows(rows, postmaster, floor),
        "floor_no_rls": _timed_rows(
            rows, postmaster, lambda: psql_copy(superuser_url, session, plain_project)
        ),
    }
    out["format_copy"] = {}
    for fmt, statement in formats.items():
        out["format_copy"][fmt] = _timed_rows(
            rows, postmaster, partial(psql_copy, app_url, as_user, statement)
        )
    return out, floor


def baseline(db: Database, auth: UUID) -> dict[str, Any]:
    t0 = time.perf_counter()
    rows = 0
    with db.as_user(auth) as conn:
        for batch in iter_export_batches(conn, "components", ExportFilter()):
            rows += len(batch)
    seconds = time.perf_counter() - t0
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "load_average": _load(),
    }


def copy_plain(db: Database, auth: UUID) -> dict[str, Any]:
    """The same rows as plain COPY CSV (what Parquet reads), in this process, dropped: what
    PostgreSQL and the COPY protocol cost before any writer."""
    t0 = time.perf_counter()
    rows = 0
    with db.as_user(auth) as conn:
        for batch in iter_export_copy(conn, "components", ExportFilter(), "arrow"):
            rows += batch.rows
    seconds = time.perf_counter() - t0
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "load_average": _load(),
    }


def http_export(
    server: AppProcess, token: str, fmt: str, rows: int, postmaster: int | None = None
) -> dict[str, Any]:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    load = _load()
    with RssSampler(server.proc.pid) as rss, CpuMeter(postmaster, server.proc.pid) as cpu:
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
        **cpu.per_row(rows),
        "load_average": load,
    }


def _bench(db: Database, endpoints: Any, services: EmbeddedServices) -> dict[str, Any]:
    wanted = int(os.environ.get("WFMON_BENCH_EXPORT_ROWS", "1000000"))
    load = _load()
    t0 = time.perf_counter()
    data = generate(
        db,
        executions=max(2, wanted // 50),
        components=2 * wanted,
        attempts=1000,
        owner_url=endpoints.migrations_url,
    )
    f: dict[str, Any] = {
        "generate_seconds": round(time.perf_counter() - t0, 1),
        "generate_load_average": load,
    }
    postgres = next(s for s in services.status() if s.service is Service.POSTGRES)
    assert postgres.pid is not None and postgres.port is not None
    superuser = PostgresInstance(services.state_dir / "postgres", postgres.port).url()
    return f | measure(
        db,
        endpoints.web_database_url,
        endpoints.temporal_address,
        data.users[0].auth_user_id,
        project_id=data.users[0].project_id,
        superuser_url=superuser,
        postmaster=postgres.pid,
    )


def measure(
    db: Database,
    web_database_url: str,
    temporal_address: str,
    auth: UUID,
    *,
    project_id: UUID,
    superuser_url: str,
    postmaster: int | None = None,
) -> dict[str, Any]:
    """The floors, the baselines and every format's export of ``auth``'s component rows
    (all in ``project_id``; ``postmaster``: the cluster's PID, for its CPU)."""
    f: dict[str, Any] = {}
    with db.as_user(auth) as conn:
        rows = count_export_rows(conn, "components", ExportFilter())
        assert rows == count_export_rows(conn, "components", ExportFilter(project_id=project_id))
    f["rows"] = rows
    figures, floor = floors(
        db,
        auth,
        project_id,
        rows,
        app_url=libpq_url(web_database_url),
        superuser_url=libpq_url(superuser_url),
        postmaster=postmaster,
    )
    f |= figures
    f["baseline_cursor"] = baseline(db, auth)
    f["copy_plain"] = copy_plain(db, auth)
    token = dev_token(str(auth), SECRET)
    # One process: its memory and CPU are the export's (with more, a supervisor's PID
    # would be measured while a worker serves).
    server = AppProcess(web_database_url, temporal_address, workers=1)
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
            # The floor again right before each export: the machine is shared, so a floor
            # measured minutes earlier may have run under another load.
            next_floor = _timed_rows(rows, postmaster, floor)
            r = http_export(server, token, fmt, rows, postmaster)
            r["floor"] = next_floor
            r["ratio_to_floor"] = round(r["rows_per_s"] / next_floor["rows_per_s"], 2)
            # CPU: the floor's PostgreSQL CPU per row over what the export costs in all
            # (app + PostgreSQL): independent of the machine's load.
            r["cpu_ratio_to_floor"] = round(
                next_floor["postgres_cpu_us_per_row"]
                / (r["app_cpu_us_per_row"] + r["postgres_cpu_us_per_row"]),
                2,
            )
            r["ratio_to_format_copy"] = round(
                r["rows_per_s"] / f["format_copy"][fmt]["rows_per_s"], 2
            )
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
            f = _bench(db, endpoints, services)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    floor = f["floor_rls"]
    parts = [
        f"{fmt} {f[fmt]['rows_per_s'] / 1000:.0f}k rows/s "
        f"(x{f[fmt]['ratio_to_floor']} of the floor next to it, "
        f"+{f[fmt]['rss_growth_mb']:.0f} MB, load {f[fmt]['load_average']}, "
        f"app {f[fmt]['app_cpu_us_per_row']:.1f} + pg {f[fmt]['postgres_cpu_us_per_row']:.1f} "
        f"us/row)"
        for fmt in FORMATS
    ]
    write_result(
        "export",
        f,
        f"{f['rows']:,} component rows, load {floor['load_average']}: floor (PostgreSQL's "
        f"COPY under RLS) {floor['rows_per_s'] / 1000:.0f}k rows/s, "
        f"pg {floor['postgres_cpu_us_per_row']:.1f} us/row; " + "; ".join(parts),
    )


if __name__ == "__main__":
    main()
