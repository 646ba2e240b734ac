"""Search across executions (issue 12): ``wfmon.db.search.search_executions`` (what
``/api/search`` calls) vs the naive query, in the same run, on generated data.

Data: :func:`bench.debug_data.generate` (50,000 executions, 1,000,000 component rows,
200,000 attempts, two users, realistic error texts and nested JSON inputs), ANALYZEd
(``execution_search_errors`` too, here: the generator does not know that table).
Each query runs ``WFMON_BENCH_SEARCH_REPEAT`` (30) times as one user, each in its own
unit of work under row-level security, as a request does:

- new: ``search_executions`` as ``/api/search`` runs it (path terms looked up in
  ``execution_search_terms``, ``error:`` in ``execution_search_errors`` (0560), the total
  counted up to ``COUNT_CAP`` (1,000) matches, page of 20, snippets);
- new, exact count: the same with no cap on the count (what the cap saves);
- documents only: ``use_terms=False`` (no term or error table: 0400's documents, for
  reference; total capped like new);
- baseline: :func:`wfmon.db.search.baseline_search`, the same criterion as plain ILIKE /
  jsonb containment over the base tables (page of 20 ids and the exact total, no
  snippets), none of the search tables.

Targets per query: p95 <= 150 ms and baseline p95 / new p95 >= 20.

Write cost: ``WFMON_BENCH_SEARCH_WRITE_EXECUTIONS`` (200) executions of 20 components
written with the sync's writers (``upsert_execution`` + ``replace_component_executions``,
one transaction each), alternately with and without 0560's error-text triggers (disabled
by the owner in this throwaway database), 4 rounds; the current refresh functions in both.

Knobs: ``WFMON_BENCH_SEARCH_EXECUTIONS`` (50000; components 20x, attempts 4x).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

from bench.common import latency_figures, timed_ms, write_result
from bench.debug_data import ERRORS, generate
from tests.conftest import make_state_dir
from wfmon.db import Database
from wfmon.db import search as s
from wfmon.db.executions import replace_component_executions, upsert_execution
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations, libpq_url
from wfmon.model import ComponentStatus, ExecutionStatus
from wfmon.search.query import parse_search

TARGET_P95_MS = 150.0
TARGET_RATIO = 20.0
ERROR_QUERIES = ("error:CardDeclined", 'error:"connection refused"', "error:SKU-4411")
INPUT_QUERIES = (
    'input.order_id:"A-18"',
    "input.order.customer.id:C-42",
    "input.items.0.sku:SKU-20",
)
SIZE_TABLES = (
    "workflow_executions",
    "component_executions",
    "component_execution_attempts",
    "execution_search_documents",
    "execution_search_terms",
    "execution_search_errors",
)
#: "No cap" for the exact-count variant.
NO_CAP = 10**9


def _one_query(db: Database, auth: Any, q: str, repeat: int) -> dict[str, Any]:
    query = parse_search(q)
    totals: dict[str, tuple[int, bool]] = {}

    def run(key: str, **options: Any) -> Callable[[], None]:
        def call() -> None:
            with db.as_user(auth) as conn:
                page = s.search_executions(conn, query, **options)
                totals[key] = (page.total, page.total_capped)

        return call

    def baseline() -> None:
        with db.as_user(auth) as conn:
            totals["baseline"] = (s.baseline_search(conn, query)[0], False)

    few = max(5, repeat // 3)
    f: dict[str, Any] = {
        "new": latency_figures(timed_ms(run("new"), repeat), 95),
        "new_exact_count": latency_figures(
            timed_ms(run("new_exact_count", count_cap=NO_CAP), few), 95
        ),
        "documents_only": latency_figures(
            timed_ms(run("documents_only", use_terms=False), few), 95
        ),
        "baseline": latency_figures(timed_ms(baseline, few), 95),
    }
    exact = totals["baseline"][0]
    capped = (min(exact, s.COUNT_CAP), exact > s.COUNT_CAP)
    expected = {
        "new": capped,
        "documents_only": capped,
        "new_exact_count": (exact, False),
        "baseline": (exact, False),
    }
    if totals != expected:
        raise RuntimeError(f"{q}: totals differ: {totals}, expected {expected}")
    f["total"] = exact
    f["total_shown"] = f"more than {s.COUNT_CAP:,}" if capped[1] else f"{exact:,}"
    f["ratio_baseline_to_new_p95"] = round(f["baseline"]["p95_ms"] / f["new"]["p95_ms"], 1)
    f["ratio_documents_to_new_p95"] = round(f["documents_only"]["p95_ms"] / f["new"]["p95_ms"], 1)
    f["ratio_baseline_to_new_exact_count_p95"] = round(
        f["baseline"]["p95_ms"] / f["new_exact_count"]["p95_ms"], 1
    )
    f["meets_targets"] = (
        f["new"]["p95_ms"] <= TARGET_P95_MS and f["ratio_baseline_to_new_p95"] >= TARGET_RATIO
    )
    return f


def _queries(db: Database, auth: Any, repeat: int) -> dict[str, Any]:
    return {q: _one_query(db, auth, q, repeat) for q in (*ERROR_QUERIES, *INPUT_QUERIES)}


def _components(k: int) -> list[ComponentExecutionRow]:
    rows = []
    for i in range(20):
        fails = (k * 31 + i * 17) % 100 < 8
        err = ERRORS[(k + i) % len(ERRORS)]
        order = {"id": f"W-{k}", "total": k % 500 + 0.99, "customer": {"id": f"C-{k % 5000}"}}
        rows.append(
            ComponentExecutionRow(
                node_id=f"step-{i}",
                scheduled_event_id=5 + i * 6,
                status=ComponentStatus.FAILED if fails else ComponentStatus.COMPLETED,
                component_name="transform",
                input_data={
                    "order_id": f"W-{k}",
                    "step": i,
                    "order": order,
                    "items": [{"sku": f"SKU-{(i * 13 + k) % 9000}", "qty": 1 + i % 3}],
                },
                output_data=None if fails else {"rows": i % 7, "status": "ok", "step": i},
                error_type=err[0] if fails else None,
                error_message=err[1] if fails else None,
            )
        )
    return rows


#: The write-cost variants: the current triggers, and the same without 0560's.
VARIANTS = ("with_0560_error_texts", "without_0560_error_texts")
ERROR_TEXT_TRIGGERS = (
    "execution_search_documents_errors_insert",
    "execution_search_documents_errors_update",
)


def _error_text_triggers(owner: psycopg.Connection[Any], enabled: bool) -> None:
    for trigger in ERROR_TEXT_TRIGGERS:
        owner.execute(
            sql.SQL("ALTER TABLE execution_search_documents {} TRIGGER {}").format(
                sql.SQL("ENABLE" if enabled else "DISABLE"), sql.Identifier(trigger)
            )
        )


def _write_cost(db: Database, owner_url: str, user_id: Any, project_id: Any) -> dict[str, Any]:
    n = int(os.environ.get("WFMON_BENCH_SEARCH_WRITE_EXECUTIONS", "200"))
    rounds = 4
    per_round = n // rounds // len(VARIANTS)
    seconds = dict.fromkeys(VARIANTS, 0.0)
    written: dict[str, list[Any]] = {v: [] for v in VARIANTS}
    tag = uuid4().hex[:8]
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner:
        try:
            for r in range(rounds):
                for v, variant in enumerate(VARIANTS):
                    _error_text_triggers(owner, variant == VARIANTS[0])
                    for j in range(per_round):
                        k = (r * 1000 + j) * len(VARIANTS) + v
                        components = _components(k)
                        t0 = time.perf_counter()
                        with db.as_system() as conn:
                            execution_id = upsert_execution(
                                conn,
                                ExecutionRow(
                                    temporal_namespace="bench-write",
                                    temporal_workflow_id=f"w-{tag}-{variant}-{r}-{j}",
                                    temporal_run_id="r",
                                    workflow_type="checkout",
                                    task_queue="tq",
                                    status=ExecutionStatus.COMPLETED,
                                    started_at=datetime.now(UTC),
                                    created_by=user_id,
                                    project_id=project_id,
                                    input={"order_id": f"W-{k}"},
                                ),
                            )
                            replace_component_executions(conn, execution_id, components)
                        seconds[variant] += time.perf_counter() - t0
                        written[variant].append(execution_id)
        finally:
            _error_text_triggers(owner, True)
    per = per_round * rounds
    out: dict[str, Any] = {"executions_per_variant": per, "components_per_execution": 20}
    with db.as_system() as conn:
        for variant in VARIANTS:
            counted = conn.execute(
                "SELECT count(*) AS n FROM execution_search_errors WHERE execution_id = ANY(%s)",
                (written[variant],),
            ).fetchone()
            assert counted is not None
            out[variant] = {
                "ms_per_execution": round(seconds[variant] * 1000 / per, 2),
                "error_text_rows": int(counted["n"]),
            }
    with_, without = (out[v]["ms_per_execution"] for v in VARIANTS)
    out["added_ms_per_execution"] = round(with_ - without, 2)
    out["ratio"] = round(with_ / without, 3)
    return out


def _sizes(owner_url: str) -> dict[str, Any]:
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner:
        rows = owner.execute(
            """
            SELECT c.relname, pg_total_relation_size(c.oid) AS total,
                   pg_relation_size(c.oid) AS heap, c.reltuples::bigint AS rows
            FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'
            """,
            (list(SIZE_TABLES),),
        ).fetchall()
    return {
        r[0]: {"total_mb": round(r[1] / 2**20, 1), "heap_mb": round(r[2] / 2**20, 1), "rows": r[3]}
        for r in rows
    }


def _bench(db: Database, owner_url: str) -> dict[str, Any]:
    executions = int(os.environ.get("WFMON_BENCH_SEARCH_EXECUTIONS", "50000"))
    repeat = int(os.environ.get("WFMON_BENCH_SEARCH_REPEAT", "30"))
    t0 = time.perf_counter()
    data = generate(
        db,
        executions=executions,
        components=20 * executions,
        attempts=4 * executions,
        owner_url=owner_url,
    )
    f: dict[str, Any] = {
        "executions": data.executions,
        "components": data.components,
        "attempts": data.attempts,
        "generate_s": round(time.perf_counter() - t0, 1),
        "generate_stages_s": {k: round(v, 1) for k, v in data.seconds.items()},
        "repeat": repeat,
        "target_p95_ms": TARGET_P95_MS,
        "target_ratio": TARGET_RATIO,
    }
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner:
        owner.execute("ANALYZE execution_search_errors")
    f["queries"] = _queries(db, data.users[0].auth_user_id, repeat)
    f["sizes"] = _sizes(owner_url)
    with db.as_system() as conn:
        f["trigrams_per_execution"] = s.free_text_trigrams_per_execution(conn)
    user = data.users[0]
    f["write_cost"] = _write_cost(db, owner_url, user.user_id, user.project_id)
    f["all_targets_met"] = all(q["meets_targets"] for q in f["queries"].values())
    return f


def main() -> None:
    state = make_state_dir("wfmon-bench-search-")
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        with Database(endpoints.database_url, max_size=4) as db:
            f = _bench(db, endpoints.migrations_url)
    finally:
        services.down()
        shutil.rmtree(state, ignore_errors=True)
    worst = max(f["queries"].values(), key=lambda q: q["new"]["p95_ms"])
    least = min(q["ratio_baseline_to_new_p95"] for q in f["queries"].values())
    w = f["write_cost"]
    write_result(
        "search",
        f,
        f"{f['executions']:,} exec: worst p95 {worst['new']['p95_ms']:.0f} ms, least "
        f"{least:.0f}x faster than naive (targets {TARGET_P95_MS:.0f} ms, "
        f"{TARGET_RATIO:.0f}x: {'met' if f['all_targets_met'] else 'MISSED'}; totals counted "
        f"to {s.COUNT_CAP:,}); error-text trigger +{w['added_ms_per_execution']} ms per "
        f"sync write (x{w['ratio']})",
    )


if __name__ == "__main__":
    main()
