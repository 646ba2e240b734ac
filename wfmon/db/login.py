"""What the database login role may do, checked before wfmon serves anything with it.

wfmon's processes must log in as a role that owns nothing and can only switch to the RLS
roles (migrations/0300). If the login role owned the tables, had BYPASSRLS or could become
a role that does, one injected statement (``RESET ROLE``, then ``ALTER TABLE ... NO FORCE
ROW LEVEL SECURITY``) would show every user's rows. :func:`check_login_role` finds that
out with one query and refuses, naming the problem and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import Connection
from psycopg.rows import DictRow

_LOGIN_ROLE_FACTS = """
SELECT
    current_user AS login_role,
    r.rolsuper AS superuser,
    r.rolbypassrls AS bypassrls,
    -- tables, views, sequences of wfmon's schema the login role owns or can become owner of
    (SELECT count(*) FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace
        AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owned_relations,
    -- roles it can become that are superuser or BYPASSRLS
    ARRAY(SELECT b.rolname::text FROM pg_roles b
           WHERE b.oid <> r.oid AND (b.rolsuper OR b.rolbypassrls)
             AND pg_has_role(current_user, b.oid, 'MEMBER')) AS privileged_roles,
    -- privileges granted to the login role itself on wfmon's tables
    (SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
      WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = r.oid) AS own_grants,
    ARRAY(SELECT g.rolname::text FROM pg_roles g
           WHERE g.rolname IN ('wfmon_user', 'wfmon_system')
             AND pg_has_role(current_user, g.oid, 'MEMBER')) AS rls_roles
FROM pg_roles r
WHERE r.rolname = current_user
"""


class UnsafeLoginRole(RuntimeError):
    """The login role could bypass row-level security; the message says why and what to do."""


@dataclass(frozen=True)
class LoginRole:
    """What :func:`check_login_role` found: the role's name and the RLS roles it may become."""

    name: str
    rls_roles: frozenset[str]


def check_login_role(conn: Connection[DictRow]) -> LoginRole:
    """The login role of ``conn``, if it is safe to serve with.

    Raises :class:`UnsafeLoginRole` when it is a superuser, has BYPASSRLS, owns (or can
    become the owner of) any of wfmon's tables, holds table privileges of its own, or can
    become a superuser or BYPASSRLS role.
    """
    row = conn.execute(_LOGIN_ROLE_FACTS).fetchone()
    assert row is not None
    name = row["login_role"]
    problems = []
    if row["superuser"]:
        problems.append("is a superuser")
    if row["bypassrls"]:
        problems.append("has BYPASSRLS")
    if row["owned_relations"]:
        problems.append(f"owns (or can become the owner of) {row['owned_relations']} relations")
    if row["own_grants"]:
        problems.append("holds privileges on wfmon's tables of its own")
    if row["privileged_roles"]:
        problems.append(f"can become {', '.join(row['privileged_roles'])} (superuser or BYPASSRLS)")
    if problems:
        raise UnsafeLoginRole(
            f"wfmon refuses to use database login role {name!r}: it {'; it '.join(problems)}, "
            "so row-level security would not protect users' data. Log in as a role that owns "
            "nothing and may only switch to wfmon_user and wfmon_system, e.g. "
            "wfmon_authenticator (see docs/architecture/database.md); the table owner is for "
            "`wfmon migrate` only (WFMON_MIGRATIONS_DATABASE_URL)."
        )
    return LoginRole(name=name, rls_roles=frozenset(row["rls_roles"]))
