"""Time to bring the three embedded services up from cold and apply migrations.

Cold = a fresh state directory (initdb included). Warm = ``up`` on an existing state
directory after ``down`` (what a developer sees on the second ``make demo``). The baseline
in the same run is PostgreSQL's own ``initdb`` + first start, the floor of a cold start.
Median of 5 runs each.
"""

from __future__ import annotations

import shutil
import time

from bench.common import median, write_result
from tests.conftest import make_state_dir
from wfmon.dev import postgres
from wfmon.dev.process import free_port
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations

RUNS = 5


def main() -> None:
    cold, warm, migrate, pg_floor = [], [], [], []
    for _ in range(RUNS):
        state = make_state_dir("wfmon-bench-")
        services = EmbeddedServices(state, temporal_ui=False)
        try:
            t0 = time.perf_counter()
            ep = services.up()
            t1 = time.perf_counter()
            apply_migrations(ep.migrations_url)
            t2 = time.perf_counter()
            cold.append(t1 - t0)
            migrate.append(t2 - t1)
            services.down()
            t3 = time.perf_counter()
            services.up()
            warm.append(time.perf_counter() - t3)
        finally:
            services.down()
            shutil.rmtree(state, ignore_errors=True)

        state = make_state_dir("wfmon-bench-pg-")
        try:
            t0 = time.perf_counter()
            pid = postgres.start(state / "postgres", free_port())
            pg_floor.append(time.perf_counter() - t0)
            postgres.stop(pid)
        finally:
            shutil.rmtree(state, ignore_errors=True)

    figures = {
        "runs": RUNS,
        "cold_up_s": median(cold),
        "migrations_s": median(migrate),
        "cold_up_and_migrate_s": median([c + m for c, m in zip(cold, migrate, strict=True)]),
        "warm_up_s": median(warm),
        "baseline_postgres_initdb_and_start_s": median(pg_floor),
        "ratio_cold_up_to_postgres_alone": median(cold) / median(pg_floor),
    }
    write_result(
        "services_startup",
        figures,
        f"cold up {figures['cold_up_s']:.2f}s + migrate {figures['migrations_s']:.2f}s, "
        f"warm up {figures['warm_up_s']:.2f}s, "
        f"{figures['ratio_cold_up_to_postgres_alone']:.1f}x PostgreSQL alone (median of {RUNS})",
    )


if __name__ == "__main__":
    main()
