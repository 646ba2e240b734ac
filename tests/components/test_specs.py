"""The components table is seeded with exactly the specs the code registers."""

from __future__ import annotations

from wfmon.components import SPECS, DenoSandbox, register_components
from wfmon.connections import ConnectionResolver, Keyring, generate_key
from wfmon.db import Database
from wfmon.runtime import builtin_registry


def test_seeded_rows_match_specs(db: Database) -> None:
    with db.as_system() as conn:
        rows = conn.execute(
            "SELECT c.name, c.display_name, c.description, c.config_schema, v.name AS vis "
            "FROM components c JOIN component_visibility v ON v.id = c.visibility_id "
            "WHERE c.name = ANY(%s)",
            ([s.name for s in SPECS],),
        ).fetchall()
    seeded = {r["name"]: r for r in rows}
    assert set(seeded) == {s.name for s in SPECS}
    for spec in SPECS:
        row = seeded[spec.name]
        assert (row["display_name"], row["description"]) == (spec.display_name, spec.description)
        assert row["config_schema"] == spec.config_schema
        assert row["vis"] == "public"


def test_register_components_adds_the_four(db: Database, sandbox: DenoSandbox) -> None:
    registry = builtin_registry()
    register_components(
        registry, ConnectionResolver(db, Keyring.parse(generate_key())), sandbox=sandbox
    )
    assert {s.name for s in SPECS} <= set(registry)
