"""The column specs of wfmon.db.columns are the migrated schema, and everything that lists
columns of the two synced tables is generated from them."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
from psycopg import _queries

from assets.metadata import COMPONENT_COLUMNS, EXECUTION_COLUMNS
from resources.tables import asset_columns
from wfmon.db import Database
from wfmon.db.columns import COMPONENT_EXECUTIONS, WORKFLOW_EXECUTIONS, Table
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow, ListedExecution
from wfmon.db.sync import _WRITE_SYNCED
from wfmon.db.tables import read_table

#: information_schema.columns.data_type of the short type names the migrations use.
_DATA_TYPE = {"timestamptz": "timestamp with time zone"}


def migrated_columns(db: Database, table: str) -> list[tuple[str, str]]:
    """(name, data_type) of ``table`` in column order, as the system role sees them."""
    with db.as_system() as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [(r["column_name"], r["data_type"]) for r in rows]


@pytest.mark.parametrize("spec", [WORKFLOW_EXECUTIONS, COMPONENT_EXECUTIONS], ids=lambda t: t.name)
def test_spec_is_the_migrated_table(fresh_db: Database, spec: Table) -> None:
    """Same columns, same order, same types: a migration that changes the table fails
    here until the spec (and with it every generated column list) says so."""
    expected = [(c.name, _DATA_TYPE.get(c.sql_type, c.sql_type)) for c in spec.columns]
    assert migrated_columns(fresh_db, spec.name) == expected
    assert all(c.description.strip() for c in spec.columns)


@pytest.mark.parametrize(
    ("row", "spec"),
    [
        (ExecutionRow, WORKFLOW_EXECUTIONS),
        (ListedExecution, WORKFLOW_EXECUTIONS),
        (ComponentExecutionRow, COMPONENT_EXECUTIONS),
    ],
    ids=lambda v: getattr(v, "__name__", getattr(v, "name", "")),
)
def test_row_dataclasses_name_columns_of_their_table(row: type, spec: Table) -> None:
    assert {f.name for f in fields(row)} <= set(spec.names())


def test_dagster_metadata_and_io_manager_come_from_the_spec(fresh_db: Database) -> None:
    """The asset metadata describes exactly what the IO manager loads, with the spec's
    descriptions (component rows also carry four columns of their execution)."""
    for schema, asset, spec in [
        (EXECUTION_COLUMNS, "workflow_executions", WORKFLOW_EXECUTIONS),
        (COMPONENT_COLUMNS, "component_executions", COMPONENT_EXECUTIONS),
    ]:
        loaded = asset_columns(asset)
        assert [(c.name, c.type, c.description) for c in schema.columns] == [
            (c.name, c.sql_type, c.description) for c in loaded
        ]
        table_columns = [c for c in loaded if c.name in spec.names()]
        assert table_columns == list(spec.with_roles({"data"}))
        with fresh_db.as_system() as conn:
            names, _ = read_table(conn, asset)
        assert names == [c.name for c in loaded]
    started = {c.name: c.description or "" for c in COMPONENT_COLUMNS.columns}["started_at"]
    assert "scheduled" in started and "last attempt" not in started


def test_the_sync_write_is_short_enough_for_psycopgs_statement_cache() -> None:
    """psycopg splits a statement at its placeholders once and caches the result only up to
    MAX_CACHED_STATEMENT_LENGTH bytes and MAX_CACHED_STATEMENT_PARAMS parameters; the
    sync's write runs once per synced execution, so it must stay cached (a column added to
    the synced tables can push it over)."""
    assert len(_WRITE_SYNCED) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    params = set(re.findall(rb"%\((\w+)\)s", _WRITE_SYNCED))
    assert len(params) <= _queries.MAX_CACHED_STATEMENT_PARAMS
    assert b"\n--" not in _WRITE_SYNCED and b"\n " not in _WRITE_SYNCED
