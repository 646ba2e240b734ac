"""Migrations: from empty, twice in a row, and from two processes at once."""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from wfmon.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations, yoyo_url

ALL_MIGRATIONS = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql"))

#: What "the schema" means for comparing before and after: columns, constraints, indexes,
#: policies, grants, roles' memberships. Read by the table owner (catalogs are not under RLS).
SCHEMA_SNAPSHOT = """
SELECT 'column' AS kind, table_name || '.' || column_name || ' ' || data_type
       || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS item
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'policy', tablename || ' ' || policyname || ' ' || cmd || ' ' || roles::text
       || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '')
FROM pg_policies WHERE schemaname = 'public'
UNION ALL
SELECT 'grant', grantee || ' ' || table_name || ' ' || privilege_type
FROM information_schema.role_table_grants WHERE table_schema = 'public'
UNION ALL
SELECT 'function', p.oid::regprocedure::text FROM pg_proc p
WHERE p.pronamespace IN ('public'::regnamespace, 'auth'::regnamespace)
ORDER BY 1, 2
"""


def snapshot(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(k, i) for k, i in conn.execute(SCHEMA_SNAPSHOT).fetchall()]


def applied_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY 1")]


def test_migrations_are_numbered_and_ordered() -> None:
    """``NNNN_name.sql``: unique numbers, so file-name order is the order they apply in."""
    assert ALL_MIGRATIONS[0] == "0001_roles_and_auth"
    assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+", m) for m in ALL_MIGRATIONS), ALL_MIGRATIONS
    assert len({m[:4] for m in ALL_MIGRATIONS}) == len(ALL_MIGRATIONS)


def test_from_empty_twice(new_database: Callable[[], str]) -> None:
    url = new_database()
    assert apply_migrations(url) == ALL_MIGRATIONS
    first = snapshot(url)
    assert apply_migrations(url) == []
    assert snapshot(url) == first
    assert applied_ids(url) == ALL_MIGRATIONS
    assert any(kind == "policy" for kind, _ in first)


def test_two_processes_at_once(new_database: Callable[[], str]) -> None:
    url = new_database()
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(2)
    try:
        # The target must be importable in a spawned child: the library function itself.
        results = pool.map_async(apply_migrations, [url, url]).get(timeout=120)
    finally:
        # close + join, not the context manager's terminate(): terminate() stops idle
        # workers with SIGTERM, and a child of a process that ignores SIGTERM (a job
        # started in the background by a shell) ignores it too and is waited for forever.
        pool.close()
        pool.join()
    # Exactly one process applied everything; the other waited and found nothing to do.
    assert sorted(results, key=len) == [[], ALL_MIGRATIONS]
    assert applied_ids(url) == ALL_MIGRATIONS


def test_a_failing_migration_leaves_no_trace(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    for source in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n"
    )
    with pytest.raises(MigrationError, match="no_such_function"):
        apply_migrations(url, tmp_path)
    assert applied_ids(url) == ALL_MIGRATIONS
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_bad_url_scheme_is_named() -> None:
    with pytest.raises(MigrationError, match="mysql"):
        yoyo_url("mysql://x@localhost/db")
