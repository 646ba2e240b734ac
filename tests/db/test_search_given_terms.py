"""Migration 0620: the sync gives the search refresh the path terms it computed in Python
(``wfmon.search.terms``), and those are exactly the terms the database's own walk gives.

Checked in a real PostgreSQL: Python's terms against the database functions on awkward
values; a sync write whose given terms are used, and whose stored terms equal a fresh walk
of the stored values; the cases where the write must give none (a kept input, a value that
is not plain JSON); and that the refresh uses given terms only once.
"""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID

import pytest
from psycopg.types.json import Jsonb

from wfmon.db import Database, DbConnection
from wfmon.db import sync as sync_rows
from wfmon.db.bulk import _dumps, fast_json
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.model import BUILDER_WORKFLOW_TYPE, ComponentStatus
from wfmon.search.terms import NotPlainJson, execution_terms, search_input

from .conftest import T0, execution_row

_rng = random.Random(620)
FLOATS = [
    0.1, 0.30000000000000004, 1.0, 2.0, 100.0, 1e15, 1e16, 1e22, 1e100, 1.5e-7, 1e-5, 0.0001,
    -0.0, 0.0, 5e-324, 1.7976931348623157e308, 2.0**53 + 2, 123456789.123456789, -2.5,
    *(_rng.uniform(-1e6, 1e6) for _ in range(200)),
    *(_rng.random() * 10.0 ** _rng.randint(-300, 300) for _ in range(200)),
]  # fmt: skip
INTS = [0, -1, 7, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, 2**70, -(2**80), 10**300]
STRINGS = [
    "", "plain", 'quote " and \\ slash', "tab\tnew\nline\r", "\x01\x1f\x7f", "é ü ß ∑ 中文",
    "emoji 🎉", "\u2028\u2029", "a=b", "s", "n1", "with.dot", "*", ":", ";", ",",
]  # fmt: skip
DOCUMENTS: list[Any] = [
    {"order": {"id": "A-17", "total": 1.50, "paid": True, "note": None}},
    {"a": {"b": [1, 2.50, {"c": None}]}, "d.e": True, "": "empty key", "é": [[["deep"]]]},
    [[1, [2, [3]]], "top", 7, None, {}, []],
    {"items": [{"sku": "S-1", "qty": 1}, {"sku": "S-1", "qty": 1.0}]},
    {"0": {"1": [{"2": False}]}, "x": {"=": "=", "*": "*", "key with space": "v"}},
    {"floats": FLOATS, "ints": INTS, "strings": STRINGS},
    {key: key for key in STRINGS},
    "a top-level string",
    12.5,
    None,
    [],
    {},
]


def _database_terms(
    conn: DbConnection, inputs: list[Any], outputs: list[Any], dumps: Any = None
) -> list[int]:
    """The refresh's own definition of the terms of these input and output documents
    (their JSON written by ``dumps``)."""
    row = conn.execute(
        """
        SELECT ARRAY(SELECT DISTINCT t FROM (
            SELECT wfmon_search_term('i', x) FROM wfmon_json_leaf_bodies(%(i)s) x
            UNION ALL
            SELECT wfmon_search_term('o', x) FROM wfmon_json_leaf_bodies(%(o)s) x
        ) y (t) ORDER BY t) AS terms
        """,
        {"i": Jsonb(inputs, dumps=dumps), "o": Jsonb(outputs, dumps=dumps)},
    ).fetchone()
    assert row is not None
    return list(row["terms"])


@pytest.mark.parametrize("dumps", [fast_json, _dumps], ids=["orjson", "json.dumps"])
def test_python_terms_equal_the_database_s(fresh_db: Database, dumps: Any) -> None:
    with fresh_db.as_system() as conn:
        for doc in DOCUMENTS:
            # The document as an execution input and as a component output.
            python = execution_terms("Plain", doc, None, [(None, doc)])
            documents = [doc] if doc is not None else []
            assert python == _database_terms(conn, documents, documents, dumps), doc
        # Not vacuous: the big documents have many terms, and they are sorted and distinct.
        many = execution_terms("Plain", DOCUMENTS[5], None, [])
        assert len(many) > 400 and many == sorted(set(many))


def test_the_builder_definition_is_left_out_as_the_database_leaves_it_out(
    fresh_db: Database,
) -> None:
    cases: list[Any] = [
        [{"definition": {"nodes": [{"id": "n1"}]}, "input": {"order": "A-1"}}, "second"],
        [{"input": {"order": "A-2"}}],
        ["not an object", {"definition": "kept: not the first argument"}],
        [],
        {"definition": "an object input is kept whole"},
    ]
    with fresh_db.as_system() as conn:
        for value in cases:
            seen = conn.execute(
                "SELECT wfmon_search_input(%s, %s) AS v", (BUILDER_WORKFLOW_TYPE, Jsonb(value))
            ).fetchone()
            assert seen is not None
            assert search_input(BUILDER_WORKFLOW_TYPE, value) == seen["v"], value
            assert search_input("Plain", value) == value
            assert execution_terms(BUILDER_WORKFLOW_TYPE, value, None, []) == _database_terms(
                conn, [seen["v"]], []
            )
    assert execution_terms(BUILDER_WORKFLOW_TYPE, cases[0], None, []) != execution_terms(
        "Plain", cases[0], None, []
    )


def test_values_that_are_not_plain_json_are_left_to_the_database() -> None:
    for bad in ({"when": T0}, {"id": UUID(int=1)}, [float("nan")], {"x": float("inf")}):
        with pytest.raises(NotPlainJson):
            execution_terms("Plain", bad, None, [])


# -- the sync's write ------------------------------------------------------------------


def _component(node: str, value: Any, output: Any = None) -> ComponentExecutionRow:
    return ComponentExecutionRow(
        node_id=node,
        scheduled_event_id=int(node[1:]),
        status=ComponentStatus.COMPLETED,
        input_data=value,
        output_data=output,
    )


def _write(conn: DbConnection, row: ExecutionRow, components: list[ComponentExecutionRow]) -> UUID:
    sync_rows.lock_for_sync_write(
        conn, row.temporal_namespace, row.temporal_workflow_id, row.temporal_run_id, "test"
    )
    execution_id, _ = sync_rows.write_synced_execution(
        conn,
        row,
        components,
        sync_rows.SyncedHistory(proto=b"", event_count=1),
        wfmon_workflow_id=None,
        project_id=None,
        user_id=None,
        definition_version=None,
        finite_numbers=True,
    )
    return execution_id


def _given(conn: DbConnection) -> str:
    row = conn.execute(
        "SELECT coalesce(current_setting('wfmon.search_given_terms', true), '') AS g"
    ).fetchone()
    assert row is not None
    return str(row["g"])


def _stored_terms(conn: DbConnection, execution_id: UUID) -> tuple[list[int], set[int]]:
    doc = conn.execute(
        "SELECT terms FROM execution_search_documents WHERE execution_id = %s", (execution_id,)
    ).fetchone()
    rows = conn.execute(
        "SELECT term FROM execution_search_terms WHERE execution_id = %s", (execution_id,)
    )
    assert doc is not None
    return list(doc["terms"]), {int(r["term"]) for r in rows}


def _walked_terms(conn: DbConnection, execution_id: UUID) -> list[int]:
    """The terms the database's walk gives for the stored values now (the document and its
    terms deleted first, so nothing is reused)."""
    conn.execute("DELETE FROM execution_search_documents WHERE execution_id = %s", (execution_id,))
    conn.execute("SELECT wfmon_refresh_search_documents(ARRAY[%s]::uuid[])", (execution_id,))
    return _stored_terms(conn, execution_id)[0]


def test_a_sync_write_gives_its_terms_and_they_are_the_walk_s(fresh_db: Database) -> None:
    definition = {"nodes": [{"id": "n1", "config": {"secretless": "plumbing"}}]}
    row = execution_row(
        "given-1",
        workflow_type=BUILDER_WORKFLOW_TYPE,
        input=[{"definition": definition, "input": {"order": {"id": "A-17", "total": 1.5}}}],
        output={"outputs": {"n1": {"charged": 12.0}}},
    )
    components = [
        _component("n1", [{"config": {"set": {"i": 1}}, "upstream": {}}], {"charged": 12.0}),
        _component("n2", [{"config": {"set": {"i": 2}}, "upstream": {"n1": [1.0, "x"]}}]),
        _component("n3", None, None),
    ]
    with fresh_db.as_system() as conn:
        execution_id = _write(conn, row, components)
        given = _given(conn)
        assert given.startswith(f"{execution_id}:")
    with fresh_db.as_system() as conn:
        terms, rows = _stored_terms(conn, execution_id)
        assert terms == sorted(rows) and len(terms) > 5
        assert terms == _walked_terms(conn, execution_id)
        # A re-sync with changed values gives new terms, and the old ones leave the table.
        components[1] = _component("n2", [{"config": {"set": {"i": 22}}}])
    with fresh_db.as_system() as conn:
        _write(conn, row, components)
        assert _given(conn) != given
    with fresh_db.as_system() as conn:
        resynced, rows = _stored_terms(conn, execution_id)
        assert resynced != terms and set(resynced) == rows
        assert resynced == _walked_terms(conn, execution_id)


def test_a_write_that_keeps_the_stored_input_gives_no_terms(fresh_db: Database) -> None:
    row = execution_row("given-kept", input={"order": "K-1"}, output={"ok": True})
    with fresh_db.as_system() as conn:
        execution_id = _write(conn, row, [_component("n1", {"sku": "S-1"})])
    # Temporal no longer has the input: the stored one is kept, so Python's terms (without
    # it) would be wrong; none are given and the database walks the stored values.
    kept = ExecutionRow(**{**row.__dict__, "input": None})
    with fresh_db.as_system() as conn:
        _write(conn, kept, [_component("n1", {"sku": "S-2"})])
        assert _given(conn) == ""
    with fresh_db.as_system() as conn:
        terms, rows = _stored_terms(conn, execution_id)
        assert set(terms) == rows
        assert set(execution_terms("Plain", {"order": "K-1"}, None, [])) <= rows
        assert terms == _walked_terms(conn, execution_id)


def test_a_value_that_is_not_plain_json_leaves_the_terms_to_the_database(
    fresh_db: Database,
) -> None:
    row = execution_row("given-uuid", input={"id": UUID(int=7), "n": 1})
    with fresh_db.as_system() as conn:
        execution_id = _write(conn, row, [])
        assert _given(conn) == ""
    with fresh_db.as_system() as conn:
        terms, rows = _stored_terms(conn, execution_id)
        assert set(terms) == rows and len(terms) == 2
        assert terms == _walked_terms(conn, execution_id)


def test_the_refresh_uses_given_terms_once(fresh_db: Database) -> None:
    row = execution_row("given-once", input={"a": 1})
    with fresh_db.as_system() as conn:
        execution_id = _write(conn, row, [])
    with fresh_db.as_system() as conn:
        # Given terms are what the refresh stores (here deliberately not the values' own)...
        conn.execute(
            "SELECT set_config('wfmon.search_given_terms', %s, true)", (f"{execution_id}:-5,9",)
        )
        conn.execute("SELECT wfmon_refresh_search_documents(ARRAY[%s]::uuid[])", (execution_id,))
        assert _stored_terms(conn, execution_id) == ([-5, 9], {-5, 9})
        # ...for the next refresh only: the setting is cleared, and a refresh that walks
        # the values (the stored terms forgotten) gives their own terms back.
        assert _given(conn) == ""
        terms = _walked_terms(conn, execution_id)
        assert terms == execution_terms("Plain", {"a": 1}, None, [])
        assert set(terms) == _stored_terms(conn, execution_id)[1]
