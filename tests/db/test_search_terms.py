"""Search terms (migrations 0401, 0402: path=value terms only): kept current by the sync's
writes, read only by the execution's owner, used through their btree index under row-level
security, and giving exactly the results of the documents alone; ``error:`` reads the
documents, and migration 0402 leaves no error trigram behind."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import psycopg
import pytest

from wfmon.db import Database, DbConnection
from wfmon.db import search as s
from wfmon.db.executions import insert_attempts, replace_component_executions, upsert_execution
from wfmon.db.rows import AttemptRow, ComponentExecutionRow
from wfmon.dev.services import Endpoints
from wfmon.migrate import MIGRATIONS_DIR, libpq_url
from wfmon.model import BUILDER_WORKFLOW_TYPE, ComponentStatus
from wfmon.search.query import parse_search

from .conftest import T0, World, execution_row


def _debug_data() -> Any:
    """bench/debug_data.py (bench/ is not a package the tests import)."""
    path = Path(__file__).parents[2] / "bench" / "debug_data.py"
    spec = importlib.util.spec_from_file_location("wfmon_bench_debug_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _terms(conn: DbConnection, execution_id: UUID) -> set[int]:
    rows = conn.execute(
        "SELECT term FROM execution_search_terms WHERE execution_id = %s", (execution_id,)
    )
    return {int(r["term"]) for r in rows}


def _hash(conn: DbConnection, kind: str, body: str) -> int:
    row = conn.execute("SELECT wfmon_search_term(%s, %s) AS t", (kind, body)).fetchone()
    assert row is not None
    return int(row["t"])


def _component(error: str | None, payload: object) -> ComponentExecutionRow:
    return ComponentExecutionRow(
        node_id="charge",
        scheduled_event_id=5,
        status=ComponentStatus.FAILED if error else ComponentStatus.COMPLETED,
        error_type="CardDeclined" if error else None,
        error_message=error,
        input_data=payload,
    )


@pytest.fixture(scope="module")
def synced(fresh_db: Database, world: World) -> UUID:
    """An execution of user A with a failing component, synced as a sync writes it."""
    with fresh_db.as_system() as conn:
        execution_id = upsert_execution(
            conn,
            execution_row(
                "terms-a",
                created_by=world.ids["A"],
                project_id=world.ids["pa"],
                input={"order": {"id": "A-17", "total": 1.50}},
            ),
        )
        replace_component_executions(
            conn, execution_id, [_component("insufficient funds", {"items": [{"sku": "S-1"}]})]
        )
    return execution_id


def _document_terms(conn: DbConnection, execution_id: UUID) -> set[int]:
    doc = conn.execute(
        "SELECT terms FROM execution_search_documents WHERE execution_id = %s", (execution_id,)
    ).fetchone()
    assert doc is not None and doc["terms"] is not None
    return set(doc["terms"])


def _path_terms(conn: DbConnection, execution_id: UUID) -> set[int]:
    """What 0402 writes for an execution: its documents' path=value terms, nothing else."""
    rows = conn.execute(
        """
        SELECT wfmon_search_term('i', x) AS t
        FROM execution_search_documents d, wfmon_json_leaf_bodies(d.input_values) x
        WHERE d.execution_id = %(id)s
        UNION
        SELECT wfmon_search_term('o', x)
        FROM execution_search_documents d, wfmon_json_leaf_bodies(d.output_values) x
        WHERE d.execution_id = %(id)s
        """,
        {"id": execution_id},
    )
    return {int(r["t"]) for r in rows}


def _current_refresh_function() -> str:
    """The ``CREATE OR REPLACE`` of the refresh in the newest migration that defines it."""
    marker = "CREATE OR REPLACE FUNCTION public.wfmon_refresh_search_documents"
    newest = max(p for p in MIGRATIONS_DIR.glob("*.sql") if marker in p.read_text())
    text = newest.read_text()
    start = text.index(marker)
    return text[start : text.index("$$;", start) + 3]


def _owner_url(fresh_url: str, endpoints: Endpoints) -> str:
    """The migrations (owner) URL of this module's database."""
    return urlunsplit(urlsplit(endpoints.migrations_url)._replace(path=urlsplit(fresh_url).path))


def test_sync_writes_the_path_terms_and_a_resync_replaces_them(
    fresh_db: Database, world: World, synced: UUID
) -> None:
    with fresh_db.as_system() as conn:
        terms = _terms(conn, synced)
        assert _document_terms(conn, synced) == terms == _path_terms(conn, synced)
        # Path terms: keys joined by '.', '*' for list positions, numbers without zeros.
        assert _hash(conn, "i", "order.id=sA-17") in terms
        assert _hash(conn, "i", "order.total=n1.5") in terms
        assert _hash(conn, "i", "items.*.sku=sS-1") in terms
        assert _hash(conn, "o", "order.id=sA-17") not in terms
        # No error trigrams (0402): the error text is on the document only.
        assert _hash(conn, "e", "fun") not in terms and _hash(conn, "e", "car") not in terms
        # A re-sync with another component input: its old path terms go, the new ones come.
        replace_component_executions(
            conn, synced, [_component("stolen card", {"items": [{"sku": "S-2"}]})]
        )
        after = _terms(conn, synced)
        assert after == _document_terms(conn, synced) == _path_terms(conn, synced)
        assert _hash(conn, "i", "items.*.sku=sS-1") not in after
        assert _hash(conn, "i", "items.*.sku=sS-2") in after
        assert _hash(conn, "i", "order.id=sA-17") in after  # the execution's own input
        assert _hash(conn, "e", "sto") not in after
        # A failed attempt's message changes the errors text, not the terms.
        insert_attempts(
            conn,
            [
                AttemptRow(
                    temporal_namespace="default",
                    temporal_workflow_id="terms-a",
                    temporal_run_id="run-terms-a",
                    activity_id="charge",
                    attempt=1,
                    started_at=T0,
                    outcome="failed",
                    ended_at=T0,
                    failure_type="TimeoutError",
                    failure_message="deadline exceeded",
                )
            ],
        )
        assert _terms(conn, synced) == after
        # Putting the first input back restores its terms exactly.
        replace_component_executions(
            conn, synced, [_component("insufficient funds", {"items": [{"sku": "S-1"}]})]
        )
        assert _terms(conn, synced) == terms
    with fresh_db.as_user(world.auth["A"]) as conn:
        # Error searches are answered from the documents, terms or not.
        for q in ("error:deadline", "error:funds", "error:CardDeclined"):
            assert s.search_executions(conn, parse_search(q)).total == 1, q
        assert s.search_executions(conn, parse_search("error:stolen")).total == 0


def test_migration_0402_removes_the_error_trigrams(
    fresh_db: Database, fresh_url: str, endpoints: Endpoints, synced: UUID
) -> None:
    """Rows written by 0401's function (error trigrams too) become path terms only when 0402
    runs as the owner (FORCE RLS hides the rows from the owner: the migration lifts FORCE
    for its own transaction), and later syncs diff against what is stored."""
    owner_url = libpq_url(_owner_url(fresh_url, endpoints))
    function_0401 = (MIGRATIONS_DIR / "0401_search_terms.sql").read_text()
    start = function_0401.index("CREATE OR REPLACE FUNCTION public.wfmon_refresh_search_documents")
    function_0401 = function_0401[start : function_0401.index("$$;", start) + 3]
    migration_0402 = (MIGRATIONS_DIR / "0402_search_terms_paths_only.sql").read_text()
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute(function_0401)
        try:
            with fresh_db.as_system() as conn:
                s.refresh_search_documents(conn, [synced])
                with_trigrams = _terms(conn, synced)
                assert _hash(conn, "e", "fun") in with_trigrams
                assert _document_terms(conn, synced) == with_trigrams
        finally:
            with owner.transaction():
                owner.execute(migration_0402)
        forced = owner.execute(
            "SELECT bool_and(relforcerowsecurity) FROM pg_class WHERE relname = ANY(%s)",
            (["execution_search_documents", "execution_search_terms"],),
        ).fetchone()
        assert forced == (True,)
    try:
        with fresh_db.as_system() as conn:
            terms = _terms(conn, synced)
            assert terms == _document_terms(conn, synced) == _path_terms(conn, synced)
            assert terms < with_trigrams and _hash(conn, "e", "fun") not in terms
            replace_component_executions(
                conn, synced, [_component("insufficient funds", {"items": [{"sku": "S-3"}]})]
            )
            assert (
                _terms(conn, synced) == _document_terms(conn, synced) == _path_terms(conn, synced)
            )
            replace_component_executions(
                conn, synced, [_component("insufficient funds", {"items": [{"sku": "S-1"}]})]
            )
            assert _terms(conn, synced) == terms
    finally:
        # 0402's file replaced the refresh with its own: the later tests get the current one.
        with psycopg.connect(owner_url, autocommit=True) as owner:
            owner.execute(_current_refresh_function())


def test_only_the_owner_reads_the_terms(fresh_db: Database, world: World, synced: UUID) -> None:
    with fresh_db.as_user(world.auth["A"]) as conn:
        assert _terms(conn, synced)
    with fresh_db.as_user(world.auth["B"]) as conn:
        assert _terms(conn, synced) == set()
        assert conn.execute("SELECT count(*) AS n FROM execution_search_terms").fetchone() == {
            "n": 0
        }


def test_the_user_s_lookup_uses_the_btree_index(
    fresh_db: Database, world: World, synced: UUID
) -> None:
    """int8 equality is leakproof, so under RLS the caller's condition and the terms are
    index conditions (a non-leakproof one would leave only a sequential scan)."""
    query = parse_search('error:insufficient order.id = "A-17"')
    with fresh_db.as_user(world.auth["A"]) as conn:
        terms = s.term_lookups(conn, query)
        assert len(terms) == 1  # the path; error: reads the documents
        statement, params = s.search_statement(query, terms=terms)
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r["QUERY PLAN"] for r in conn.execute("EXPLAIN " + statement.as_string(conn), params)
        )
        assert "Seq Scan on execution_search_terms" not in plan, plan
        assert plan.count("execution_search_terms_pkey") == 1, plan
        assert "Index Cond: ((created_by = " in plan, plan
        assert s.search_executions(conn, query).total == 1


def test_term_paths() -> None:
    match = parse_search("input.items.0.sku:S-1").json[0]
    assert s.json_term_paths(match) == ["items.0.sku", "items.*.sku"]


def test_the_builders_definition_is_not_indexed_but_user_input_is_found(
    fresh_db: Database, world: World
) -> None:
    """migrations/0610: the builder workflow's argument carries the definition that ran;
    search indexes neither its paths nor its text, and still finds the user's values (the
    argument's ``input``, every component's input, node configs included). Another
    workflow type's ``definition`` key is user data and stays searchable."""
    definition = {
        "id": "defn-0610",
        "nodes": [{"id": "ship-0610", "config": {"set": {"carrier": "zz-carrier-0610"}}}],
    }
    component = ComponentExecutionRow(
        node_id="ship-0610",
        scheduled_event_id=5,
        status=ComponentStatus.COMPLETED,
        input_data=[
            {
                "node_id": "ship-0610",
                "config": {"set": {"carrier": "zz-carrier-0610"}},
                "workflow_input": {"order_id": "ord-0610"},
            }
        ],
    )
    owner = {"created_by": world.ids["A"], "project_id": world.ids["pa"]}
    with fresh_db.as_system() as conn:
        builder = upsert_execution(
            conn,
            execution_row(
                "defn-builder",
                workflow_type=BUILDER_WORKFLOW_TYPE,
                input=[{"definition": definition, "input": {"order_id": "ord-0610"}}],
                **owner,
            ),
        )
        replace_component_executions(conn, builder, [component])
        other = upsert_execution(
            conn,
            execution_row(
                "defn-other",
                workflow_type="OrdersWorkflow",
                input=[{"definition": {"id": "defn-0610"}, "input": {"order_id": "ord-0611"}}],
                **owner,
            ),
        )
        terms = _terms(conn, builder)
        assert terms == _document_terms(conn, builder) == _path_terms(conn, builder)
        for body in ("*.definition.id=sdefn-0610", "*.definition.nodes.*.id=sship-0610"):
            assert _hash(conn, "i", body) not in terms, body
        assert _hash(conn, "i", "*.input.order_id=sord-0610") in terms
        assert _hash(conn, "i", "*.workflow_input.order_id=sord-0610") in terms
        assert _hash(conn, "i", "*.config.set.carrier=szz-carrier-0610") in terms
        assert _hash(conn, "i", "*.definition.id=sdefn-0610") in _terms(conn, other)
        doc = conn.execute(
            "SELECT inputs, input_values FROM execution_search_documents WHERE execution_id = %s",
            (builder,),
        ).fetchone()
        assert doc is not None and "defn-0610" not in doc["inputs"]
        assert "definition" not in str(doc["input_values"])
        # The stored execution row keeps its whole input: only search leaves it out.
        row = conn.execute(
            "SELECT input FROM workflow_executions WHERE id = %s", (builder,)
        ).fetchone()
        assert row is not None and row["input"][0]["definition"] == definition
    expected = {
        "input.0.definition.id:defn-0610": {other},
        "input:defn-0610": {other},
        "input.0.input.order_id:ord-0610": {builder},
        "input.0.workflow_input.order_id:ord-0610": {builder},
        "input.0.config.set.carrier:zz-carrier-0610": {builder},
        "input:zz-carrier-0610": {builder},
    }
    with fresh_db.as_user(world.auth["A"]) as conn:
        for q, ids in expected.items():
            for use_terms in (True, False):
                page = s.search_executions(conn, parse_search(q), use_terms=use_terms)
                assert {h.id for h in page.items} == ids, (q, use_terms)
        # The snippets do not point into the definition either: only the component matched.
        (hit,) = s.search_executions(conn, parse_search("input:zz-carrier-0610")).items
        assert {m.source for m in hit.matches} == {"component"}, hit.matches


@pytest.fixture(scope="module")
def debug(fresh_db: Database, world: World) -> Iterator[Any]:
    yield _debug_data().generate(fresh_db, executions=120, components=1200, attempts=240)


QUERIES = [
    "error:CardDeclined",
    'error:"connection refused"',
    "error:timeout status:failed",
    "error:SKU-4411",
    "error:xyzzy-not-there",
    'order_id = "A-18"',
    "input.order.customer.id:C-42",
    "input.order.total:17.99",
    "input.items.0.sku:SKU-20",
    "output.rows:3",
    "output.charged:true",
    "order.customer.country = DE error:declined",
    "input.order.id:A-7 error:timeout",
    "step = 3",
    "timeout",
]


@pytest.mark.parametrize("q", QUERIES)
def test_terms_give_the_documents_results(fresh_db: Database, debug: Any, q: str) -> None:
    query = parse_search(q)
    for user in debug.users:
        with fresh_db.as_user(user.auth_user_id) as conn:
            fast = s.search_executions(conn, query, limit=100)
            slow = s.search_executions(conn, query, limit=100, use_terms=False)
        assert fast.total == slow.total, q
        assert [h.id for h in fast.items] == [h.id for h in slow.items], q
        assert [h.matches for h in fast.items] == [h.matches for h in slow.items], q


def test_the_comparison_is_not_vacuous(fresh_db: Database, debug: Any) -> None:
    with fresh_db.as_user(debug.users[0].auth_user_id) as conn:
        for q in ("error:CardDeclined", 'order_id = "A-18"', "input.items.0.sku:SKU-20"):
            assert s.search_executions(conn, parse_search(q)).total > 0, q


def test_the_total_is_exact_up_to_the_cap(fresh_db: Database, debug: Any) -> None:
    """Past ``count_cap`` matches the total says "more than": the count stops reading
    there; a last page still knows its exact total, and B's count never includes A's."""
    query = parse_search("error:CardDeclined")
    a, b = (u.auth_user_id for u in debug.users)
    with fresh_db.as_user(a) as conn:
        exact = s.search_executions(conn, query, limit=100)
        n = exact.total
        assert not exact.total_capped and not exact.has_more and n == len(exact.items) > 6
        first = s.search_executions(conn, query, limit=2, count_cap=3)
        assert (first.total, first.total_capped, first.has_more) == (3, True, True)
        assert [h.id for h in first.items] == [h.id for h in exact.items[:2]]
        deep = s.search_executions(conn, query, limit=2, offset=4, count_cap=3)
        assert (deep.total, deep.total_capped, deep.has_more) == (6, True, True)
        assert [h.id for h in deep.items] == [h.id for h in exact.items[4:6]]
        last = s.search_executions(conn, query, limit=2, offset=n - 1, count_cap=3)
        assert (last.total, last.total_capped, last.has_more) == (n, False, False)
        past = s.search_executions(conn, query, limit=2, offset=n + 10, count_cap=3)
        assert (past.items, past.total, past.total_capped) == ([], 3, True)
        roomy = s.search_executions(conn, query, limit=2, count_cap=n)
        assert (roomy.total, roomy.total_capped, roomy.has_more) == (n, False, True)
    with fresh_db.as_user(b) as conn:
        theirs = s.search_executions(conn, query, limit=100)
        assert {h.id for h in theirs.items}.isdisjoint(h.id for h in exact.items)
        assert theirs.total == len(theirs.items)


def _error_lines(conn: DbConnection, execution_id: UUID) -> list[str] | None:
    row = conn.execute(
        "SELECT errors FROM execution_search_errors WHERE execution_id = %s", (execution_id,)
    ).fetchone()
    return None if row is None else sorted(row["errors"].split("\n"))


def test_error_texts_follow_the_documents(fresh_db: Database, world: World) -> None:
    """execution_search_errors (0560) holds each document's distinct error lines, follows
    every change of them, has no row without error text, and only the owner reads it."""
    rows = [
        dataclasses.replace(_component(message, {}), node_id=f"n{i}", scheduled_event_id=5 + i)
        for i, message in enumerate(["insufficient funds", "insufficient funds", "stolen card"])
    ]
    with fresh_db.as_system() as conn:
        execution_id = upsert_execution(
            conn, execution_row("errors-a", created_by=world.ids["A"], project_id=world.ids["pa"])
        )
        assert _error_lines(conn, execution_id) is None
        replace_component_executions(conn, execution_id, rows)
        doc = conn.execute(
            "SELECT errors FROM execution_search_documents WHERE execution_id = %s",
            (execution_id,),
        ).fetchone()
        assert doc is not None and len(doc["errors"].split("\n")) == 3
        assert _error_lines(conn, execution_id) == [
            "carddeclined insufficient funds",
            "carddeclined stolen card",
        ]
        replace_component_executions(conn, execution_id, rows[2:])
        assert _error_lines(conn, execution_id) == ["carddeclined stolen card"]
        replace_component_executions(conn, execution_id, [_component(None, {})])
        assert _error_lines(conn, execution_id) is None
        replace_component_executions(conn, execution_id, rows[:1])
    with fresh_db.as_user(world.auth["A"]) as conn:
        assert _error_lines(conn, execution_id) == ["carddeclined insufficient funds"]
        found = s.search_executions(conn, parse_search("error:insufficient"))
        assert execution_id in {h.id for h in found.items}
    with fresh_db.as_user(world.auth["B"]) as conn:
        assert _error_lines(conn, execution_id) is None
        found = s.search_executions(conn, parse_search("error:insufficient"))
        assert execution_id not in {h.id for h in found.items}
