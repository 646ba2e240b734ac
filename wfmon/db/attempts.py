"""Attempt rows from Temporal workers, written as ``wfmon_attempt_writer`` (migrations/0550).

The role may insert into ``component_execution_attempts`` and do nothing else: no SELECT,
no UPDATE, no other table. So the one statement here is a plain insert that skips attempts
already recorded, which makes a batch offered again after a lost commit harmless. It names
no conflict target: inferring one needs SELECT on its columns, and the only unique key a
new row can collide with is the attempt key (``id`` is generated).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from psycopg import sql

from wfmon.db.bulk import column_list, recordset, rows_param
from wfmon.db.database import DbConnection
from wfmon.db.executions import _ATTEMPT_COLUMNS
from wfmon.db.rows import AttemptRow

#: The RLS role attempt writers switch to (insert attempt rows, nothing else).
ATTEMPT_WRITER_ROLE: Final = "wfmon_attempt_writer"

_INSERT_FINISHED_ATTEMPTS: Final = sql.SQL(
    """
    INSERT INTO component_execution_attempts ({cols})
    SELECT {r_cols} FROM {recordset}
    ON CONFLICT DO NOTHING
    """
).format(
    cols=column_list(_ATTEMPT_COLUMNS),
    r_cols=column_list(_ATTEMPT_COLUMNS, "r"),
    recordset=recordset(_ATTEMPT_COLUMNS),
)


def write_finished_attempts(conn: DbConnection, attempts: Sequence[AttemptRow]) -> int:
    """Insert finished attempts in one transaction as ``wfmon_attempt_writer``; return how
    many rows were new. Attempts already recorded are left as they are.

    ``conn`` is a connection of a login role that may become the writer (``wfmon_recorder``
    or ``wfmon_authenticator``); the role switch is transaction-local, as in
    :class:`wfmon.db.Database`. Raises on any database error, with nothing written.
    """
    if not attempts:
        return 0
    with conn.transaction():
        conn.execute(
            "SELECT set_config('role', %s, true), "
            "set_config('search_path', 'public, pg_temp', true)",
            (ATTEMPT_WRITER_ROLE,),
        )
        cur = conn.execute(_INSERT_FINISHED_ATTEMPTS, (rows_param(list(attempts)),))
        return cur.rowcount


_LOGIN_REACH: Final = """
SELECT current_user AS login_role,
       r.rolsuper AS superuser,
       r.rolbypassrls AS bypassrls,
       (SELECT count(*) FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace
           AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owned_relations,
       ARRAY(SELECT g.rolname::text FROM pg_roles g
              WHERE g.oid <> r.oid AND g.rolname <> %s
                AND pg_has_role(current_user, g.oid, 'MEMBER')
              ORDER BY g.rolname) AS other_roles
FROM pg_roles r
WHERE r.rolname = current_user
"""


def login_reach_beyond_attempts(conn: DbConnection) -> tuple[str, list[str]]:
    """The login role of ``conn`` and what it can do beyond inserting attempt rows (empty
    for ``wfmon_recorder``): superuser, BYPASSRLS, owning tables, other roles it may use."""
    row = conn.execute(_LOGIN_REACH, (ATTEMPT_WRITER_ROLE,)).fetchone()
    conn.rollback()  # leave no transaction open on the sink's connection
    assert row is not None
    problems = []
    if row["superuser"]:
        problems.append("is a superuser")
    if row["bypassrls"]:
        problems.append("has BYPASSRLS")
    if row["owned_relations"]:
        problems.append(f"owns {row['owned_relations']} of wfmon's tables")
    if row["other_roles"]:
        problems.append("can become " + ", ".join(row["other_roles"]))
    return str(row["login_role"]), problems
