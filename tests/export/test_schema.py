"""The export's columns: one definition, the user guide's tables, the migrated tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wfmon.db import Database
from wfmon.db.export import COMPONENT_EXECUTION_ATTEMPTS, KINDS, ExportKind
from wfmon.export.schema import ARROW_TYPES, EXPORT_TYPES, arrow_schema, fields_of, markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs/user-guide/export.md"


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_user_guide_table_is_the_column_definition(kind: ExportKind) -> None:
    text = DOC.read_text()
    match = re.search(rf"<!-- columns:{kind} -->\n(.*?)\n<!-- /columns:{kind} -->", text, re.S)
    assert match, f"docs/user-guide/export.md has no columns:{kind} section"
    assert match.group(1) == markdown_table(kind), "regenerate with markdown_table()"


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_column_has_an_export_and_a_parquet_type(kind: ExportKind) -> None:
    fields = fields_of(kind)
    assert len({f.name for f in fields}) == len(fields)
    for f in fields:
        assert f.sql_type in EXPORT_TYPES and f.type in ARROW_TYPES
    schema = arrow_schema(fields)
    assert schema.names == [f.name for f in fields]
    assert {str(t) for t in schema.types} <= {"string", "timestamp[us, tz=UTC]", "int64", "bool"}


def test_attempt_columns_match_the_migrated_table(db: Database) -> None:
    with db.as_system() as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'component_execution_attempts' ORDER BY ordinal_position"
        ).fetchall()
    short = {
        "timestamp with time zone": "timestamptz",
        "integer": "integer",
        "text": "text",
        "uuid": "uuid",
    }
    migrated = [(r["column_name"], short.get(r["data_type"], r["data_type"])) for r in rows]
    assert migrated == [(c.name, c.sql_type) for c in COMPONENT_EXECUTION_ATTEMPTS.columns]
