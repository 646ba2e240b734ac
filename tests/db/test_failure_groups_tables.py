"""Failure groups in the database: the fingerprint function (migration 0410) on real error
messages, and the read rule of the failure-group tables (the workflow's owner only, even for
a public workflow: a group's example message is execution data)."""

from __future__ import annotations

import psycopg
import pytest

from wfmon.db import Database
from wfmon.db.failures import (
    SPARK_DAYS,
    GroupScope,
    GroupSort,
    error_fingerprint,
    failure_group_page,
    group_counts,
)

from .conftest import ACTORS, Actor, World, unit_of_work

# Occurrences of one error that differ only in what varies between runs.
SAME_ERROR = [
    (
        "CardDeclined",
        "card 4242 declined for order 7f3c2a1e-9b4d-4e2f-8a6b-1c2d3e4f5a6b"
        " at 2026-03-10T12:00:01.123Z",
    ),
    (
        "CardDeclined",
        "card 1111 declined for order 0a1b2c3d-0000-4e2f-8a6b-ffffffffffff"
        " at 2026-03-11 08:30:00+02:00",
    ),
    (
        "CardDeclined",
        "card 99 declined for order 12345678-abcd-4ef0-9abc-def012345678 at 2026-01-01",
    ),
]
SAME_QUOTED = [
    (
        "UndefinedColumn",
        'column "customer_id" does not exist (request 0x1f3a, trace 5d41402abc4b2a76)',
    ),
    (
        "UndefinedColumn",
        'column "email" does not exist (request 0xdeadbeef, trace 7d793037a0760186)',
    ),
]
SAME_SQL_VALUE = [
    ("ValueError", "invalid input syntax for type integer: 'abc' at row 12"),
    ("ValueError", "invalid input syntax for type integer: 'x-17' at row 3"),
]
FLAKY = [
    ("FlakyError", "flaky: attempt 1 fails on purpose (2 planned failures)"),
    ("FlakyError", "flaky: attempt 3 fails on purpose (5 planned failures)"),
]
# Different errors: never one group.
DIFFERENT = [
    ("CardDeclined", "card 4242 declined"),
    ("CardExpired", "card 4242 declined"),  # other failure type
    ("CardDeclined", "card 4242 expired"),
    ("ConnectionError", "connection refused by db1:5432"),
    ("ConnectionError", "connection timed out to db1:5432"),
    ("PermanentError", "always-fail: this component always fails"),
]


@pytest.mark.parametrize("group", [SAME_ERROR, SAME_QUOTED, SAME_SQL_VALUE, FLAKY])
def test_varying_ids_give_one_fingerprint(fresh_db: Database, group: list[tuple[str, str]]) -> None:
    with fresh_db.as_system() as conn:
        prints = {error_fingerprint(conn, t, m) for t, m in group}
    assert len(prints) == 1, prints
    (fp,) = prints
    assert fp.startswith(group[0][0] + ": ")
    for _, message in group:  # nothing that varied is left in the fingerprint
        for token in message.replace("(", " ").replace(")", " ").split():
            if any(ch.isdigit() for ch in token):
                assert token not in fp, (token, fp)


def test_different_errors_give_different_fingerprints(fresh_db: Database) -> None:
    with fresh_db.as_system() as conn:
        prints = [error_fingerprint(conn, t, m) for t, m in DIFFERENT]
        assert len(set(prints)) == len(DIFFERENT), prints
        # Readable: the words stay, the varying parts are named.
        assert prints[0] == "CardDeclined: card <n> declined"
        assert error_fingerprint(conn, None, None) == "Error: "
        quoted = error_fingerprint(conn, "", "Can't reach host 'db1'")
        assert quoted == "Error: Can't reach host <value>"
        long = error_fingerprint(conn, "E", "word " * 1000)
        assert len(long) <= len("E: ") + 500


def test_users_can_call_the_fingerprint(fresh_db: Database, world: World) -> None:
    with unit_of_work(fresh_db, world, "A") as conn:
        assert error_fingerprint(conn, "E", "id 42") == "E: id <n>"


# -- read rule ------------------------------------------------------------------------------

SEEN = {
    # public workflow wa_pub: its statistics are shared, its failure groups are NOT
    "A": {"wa", "wa_pub"},
    "B": {"wb"},
    "system": {"wa", "wa_pub", "wb"},
    "anon": set(),
}


@pytest.fixture(scope="module")
def seeded(fresh_db: Database, world: World) -> World:
    with fresh_db.as_system() as conn:
        for wf in ("wa", "wa_pub", "wb"):
            for table, extra_cols, extra_vals in (
                ("failure_groups", "", ""),
                ("failure_group_days", ", day", ", DATE '2026-01-01'"),
            ):
                conn.execute(
                    f"INSERT INTO {table} (workflow_id, node_id, fingerprint, project_id,"
                    f" failures, executions, first_seen, last_seen, latest_message{extra_cols})"
                    f" SELECT id, 'n', 'E: x', project_id, 1, 1, now(), now(), 'secret of '"
                    f" || name {extra_vals} FROM workflows WHERE id = %s",
                    (world.ids[wf],),
                )
        conn.execute(
            "INSERT INTO failure_group_builds (model, built_at) VALUES ('failure_groups', now())"
        )
    return world


@pytest.mark.parametrize("table", ["failure_groups", "failure_group_days"])
@pytest.mark.parametrize("actor", ACTORS)
def test_only_the_workflow_owner_reads_failure_groups(
    fresh_db: Database, seeded: World, table: str, actor: Actor
) -> None:
    with unit_of_work(fresh_db, seeded, actor) as conn:
        rows = conn.execute(f"SELECT workflow_id FROM {table}").fetchall()
    assert {seeded.label(r["workflow_id"]) for r in rows} == SEEN[actor]


@pytest.mark.parametrize("actor", ["A", "B", "anon"])
def test_users_never_write_failure_groups(fresh_db: Database, seeded: World, actor: Actor) -> None:
    for statement in (
        "UPDATE failure_groups SET failures = 0",
        "DELETE FROM failure_groups",
        "INSERT INTO failure_group_builds (model, built_at) VALUES ('failure_group_days', now())",
    ):
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            unit_of_work(fresh_db, seeded, actor) as conn,
        ):
            conn.execute(statement)


def test_build_time_is_readable_by_signed_in_users_only(fresh_db: Database, seeded: World) -> None:
    for actor, visible in (("A", 1), ("B", 1), ("anon", 0)):
        with unit_of_work(fresh_db, seeded, actor) as conn:
            rows = conn.execute("SELECT model FROM failure_group_builds").fetchall()
        assert len(rows) == visible, actor


# -- paging (migration 0590, wfmon.db.failures.failure_group_page) --------------------------

MANY_A, MANY_B = 120, 7


@pytest.fixture(scope="module")
def many(fresh_db: Database, seeded: World) -> World:
    """MANY_A more groups of A's workflow wa (ties in last_seen and failures on purpose, a
    sparkline for some) and MANY_B more of B's wb."""
    with fresh_db.as_system() as conn:
        for wf, n in (("wa", MANY_A), ("wb", MANY_B)):
            conn.execute(
                "INSERT INTO failure_groups (workflow_id, node_id, fingerprint, project_id,"
                " failures, executions, first_seen, last_seen)"
                " SELECT w.id, 'node-' || (i %% 7), 'E: error ' || i, w.project_id, 1 + i %% 13,"
                " 1, now() - interval '40 days', date_trunc('day', now()) - (i %% 5) * interval"
                " '1 hour' FROM workflows w, generate_series(1, %s) i WHERE w.id = %s",
                (n, seeded.ids[wf]),
            )
        conn.execute(
            "INSERT INTO failure_group_days (workflow_id, node_id, fingerprint, day, project_id,"
            " failures, executions, first_seen, last_seen)"
            " SELECT g.workflow_id, g.node_id, g.fingerprint, (now() AT TIME ZONE 'UTC')::date - d,"
            " g.project_id,"
            " d + 1, 1, now(), now() FROM failure_groups g, generate_series(0, 20) d"
            " WHERE g.workflow_id = %s AND g.fingerprint = 'E: error 3'",
            (seeded.ids["wa"],),
        )
    return seeded


def _keys(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(r["workflow_id"], r["node_id"], r["fingerprint"]) for r in rows]


@pytest.mark.parametrize("sort", list(GroupSort))
def test_pages_split_the_groups_in_one_total_order(
    fresh_db: Database, many: World, sort: GroupSort
) -> None:
    scope = GroupScope(many.ids["pa"])
    with unit_of_work(fresh_db, many, "A") as conn:
        counts = group_counts(conn, scope)
        total = sum(c.groups for c in counts)
        everything = failure_group_page(conn, scope, sort=sort, limit=1000)
        pages = [
            failure_group_page(conn, scope, sort=sort, offset=o, limit=50)
            for o in range(0, total + 50, 50)
        ]
    assert total == MANY_A + 2 == len(everything)  # wa's and wa_pub's seeded group too
    assert {many.label(c.workflow_id): c.groups for c in counts} == {"wa": MANY_A + 1,
                                                                    "wa_pub": 1}  # fmt: skip
    assert [len(p) for p in pages] == [50, 50, 22, 0]
    assert _keys([r for p in pages for r in p]) == _keys(everything)  # no gap, no repeat
    primary = "last_seen" if sort == GroupSort.NEWEST else "failures"
    values = [r[primary] for r in everything]
    assert values == sorted(values, reverse=True)
    (sparked,) = [r for r in everything if r["fingerprint"] == "E: error 3"]
    assert sparked["per_day"] == list(range(SPARK_DAYS, 0, -1))  # oldest first, today last
    assert all(r["per_day"] == [0] * SPARK_DAYS for r in everything if r is not sparked)


def test_paging_never_shows_another_users_groups(fresh_db: Database, many: World) -> None:
    with unit_of_work(fresh_db, many, "B") as conn:
        # A's project and A's workflow, asked for by B: nothing, not even a count
        assert group_counts(conn, GroupScope(many.ids["pa"])) == []
        assert failure_group_page(conn, GroupScope(many.ids["pa"]), limit=1000) == []
        assert failure_group_page(conn, GroupScope(None, many.ids["wa"]), limit=1000) == []
        mine = failure_group_page(conn, GroupScope(many.ids["pb"]), limit=1000)
    assert len(mine) == MANY_B + 1 and {many.label(r["workflow_id"]) for r in mine} == {"wb"}
