"""Search across executions (issue 12): ``wfmon.db.search.search_executions`` (what
``/api/search`` calls) vs the naive query, in the same run, on generated data.

Data: :func:`bench.debug_data.generate` (50,000 executions, 1,000,000 component rows,
200,000 attempts, two users, realistic error texts and nested JSON inputs), ANALYZEd.
Each query runs ``WFMON_BENCH_SEARCH_REPEAT`` (30) times as one user, each in its own
unit of work under row-level security, as a request does:

- new: ``search_executions`` (path terms looked up in ``execution_search_terms``, document
  check, page of 20, snippets; ``error:`` reads the documents, migration 0402);
- documents only: the same with ``use_terms=False`` (migration 0400's path, for reference);
- baseline: :func:`wfmon.db.search.baseline_search`, the same criterion as plain ILIKE /
  jsonb containment over the base tables (page of 20 ids and the total, no snippets).

Targets per query: p95 <= 150 ms and baseline p95 / new p95 >= 20.

Write cost: ``WFMON_BENCH_SEARCH_WRITE_EXECUTIONS`` (200) executions of 20 components
written with the sync's writers (``upsert_execution`` + ``replace_component_executions``,
one transaction each), in turn with migration 0400's refresh function (documents only),
0401's (documents, error trigrams and path terms) and 0402's (documents and path terms, the
current one), swapped by the owner in this throwaway database; each variant's term rows
per execution are counted too.

Knobs: ``WFMON_BENCH_SEARCH_EXECUTIONS`` (50000; components 20x, attempts 4x).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg

from bench.common import latency_figures, timed_ms, write_result
from bench.debug_data import ERRORS, generate
from tests.conftest import make_state_dir
from wfmon.db import Database
from wfmon.db import search as s
from wfmon.db.executions import replace_component_executions, upsert_execution
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import MIGRATIONS_DIR, apply_migrations, libpq_url
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
)


def _one_query(db: Database, auth: Any, q: str, repeat: int) -> dict[str, Any]:
    query = parse_search(q)
    totals: dict[str, int] = {}

    def run(use_terms: bool, key: str) -> Callable[[], None]:
        def call() -> None:
            with db.as_user(auth) as conn:
                totals[key] = s.search_executions(conn, query, use_terms=use_terms).total

        return call

    def baseline() -> None:
        with db.as_user(auth) as conn:
            totals["baseline"] = s.baseline_search(conn, query)[0]

    few = max(5, repeat // 3)
    f: dict[str, Any] = {
        "new": latency_figures(timed_ms(run(True, "new"), repeat), 95),
        "documents_only": latency_figures(timed_ms(run(False, "documents_only"), few), 95),
        "baseline": latency_figures(timed_ms(baseline, few), 95),
    }
    if len(set(totals.values())) != 1:
        raise RuntimeError(f"{q}: totals differ: {totals}")
    f["total"] = totals["new"]
    f["ratio_baseline_to_new_p95"] = round(f["baseline"]["p95_ms"] / f["new"]["p95_ms"], 1)
    f["ratio_documents_to_new_p95"] = round(f["documents_only"]["p95_ms"] / f["new"]["p95_ms"], 1)
    f["meets_targets"] = (
        f["new"]["p95_ms"] <= TARGET_P95_MS and f["ratio_baseline_to_new_p95"] >= TARGET_RATIO
    )
    return f


def _queries(db: Database, auth: Any, repeat: int) -> dict[str, Any]:
    return {q: _one_query(db, auth, q, repeat) for q in (*ERROR_QUERIES, *INPUT_QUERIES)}


def _refresh_function(migration: str) -> str:
    """A migration's wfmon_refresh_search_documents, as CREATE OR REPLACE."""
    text = (MIGRATIONS_DIR / migration).read_text()
    found = re.search(
        r"CREATE (?:OR REPLACE )?FUNCTION public\.wfmon_refresh_search_documents\(.*?\n\$\$;",
        text,
        re.S,
    )
    assert found is not None
    return found.group(0).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


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


VARIANTS = (
    ("0400_documents_only", "0400_search_indexes.sql"),
    ("0401_documents_trigrams_paths", "0401_search_terms.sql"),
    ("0402_documents_paths", "0402_search_terms_paths_only.sql"),
)


def _write_cost(db: Database, owner_url: str, user_id: Any, project_id: Any) -> dict[str, Any]:
    n = int(os.environ.get("WFMON_BENCH_SEARCH_WRITE_EXECUTIONS", "200"))
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner:
        row = owner.execute(
            "SELECT pg_get_functiondef('wfmon_refresh_search_documents(uuid[])'::regprocedure)"
        ).fetchone()
        assert row is not None
        current = row[0]
        definitions = {name: _refresh_function(file) for name, file in VARIANTS}
        seconds = dict.fromkeys(definitions, 0.0)
        written: dict[str, list[Any]] = {name: [] for name in definitions}
        tag = uuid4().hex[:8]
        rounds = 4
        try:
            for r in range(rounds):
                for v, (variant, definition) in enumerate(definitions.items()):
                    owner.execute(definition)
                    for j in range(n // rounds // 2):
                        k = (r * 1000 + j) * 3 + v
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
            owner.execute(current)
        per = n // rounds // 2 * rounds
        out: dict[str, Any] = {"executions_per_variant": per, "components_per_execution": 20}
        with db.as_system() as conn:
            for variant in definitions:
                counted = conn.execute(
                    "SELECT count(*) AS n FROM execution_search_terms WHERE execution_id = ANY(%s)",
                    (written[variant],),
                ).fetchone()
                assert counted is not None
                out[variant] = {
                    "ms_per_execution": round(seconds[variant] * 1000 / per, 2),
                    "term_rows_per_execution": round(int(counted["n"]) / per, 1),
                }
    base = out["0400_documents_only"]["ms_per_execution"]
    for variant in definitions:
        out[variant]["ratio_to_0400"] = round(out[variant]["ms_per_execution"] / base, 2)
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
    w1 = w["0401_documents_trigrams_paths"]["ratio_to_0400"]
    w2 = w["0402_documents_paths"]["ratio_to_0400"]
    terms = f["sizes"].get("execution_search_terms", {})
    write_result(
        "search",
        f,
        f"{f['executions']:,} exec: worst p95 {worst['new']['p95_ms']:.0f} ms, least "
        f"{least:.0f}x faster than naive (targets {TARGET_P95_MS:.0f} ms, "
        f"{TARGET_RATIO:.0f}x: {'met' if f['all_targets_met'] else 'MISSED'}); terms "
        f"{terms.get('total_mb', 0):.0f} MB, sync write x{w2} (0401: x{w1})",
    )


if __name__ == "__main__":
    main()
