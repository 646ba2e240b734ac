"""The login roles own nothing: no statement run inside a unit of work escapes row-level security.

These are the probes an injected statement would try: ``RESET ROLE``, ``SET ROLE`` to
another role, ``set_config('role', ...)``, ``SET SESSION AUTHORIZATION``, temporary tables
shadowing real ones, and then ``ALTER TABLE ... NO FORCE ROW LEVEL SECURITY``. Each runs in
a real unit of work of the login role wfmon's processes use (``wfmon_authenticator``) or the
web app uses (``wfmon_web``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from wfmon.db import Database
from wfmon.db.login import UnsafeLoginRole
from wfmon.dev.services import Endpoints

from .conftest import World

Denied = psycopg.errors.InsufficientPrivilege


def _same_database(url: str, like: str) -> str:
    """``url``'s login on the database of ``like``."""
    return urlunsplit(urlsplit(url)._replace(path=urlsplit(like).path))


@pytest.fixture(scope="module")
def web_db(fresh_url: str, endpoints: Endpoints) -> Iterator[Database]:
    with Database(_same_database(endpoints.web_database_url, fresh_url), max_size=2) as db:
        yield db


@pytest.fixture(scope="module")
def one_connection(fresh_url: str) -> Iterator[Database]:
    """The authenticator with a single pooled connection, so every unit of work shares it."""
    with Database(fresh_url, min_size=1, max_size=1) as db:
        yield db


def _no_escape(conn: psycopg.Connection[dict[str, object]]) -> None:
    """Whatever role the probe reached: it cannot turn row-level security off or read all."""
    for statement in (
        "ALTER TABLE projects NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE projects DISABLE ROW LEVEL SECURITY",
        "DROP POLICY projects_owner ON projects",
        "CREATE POLICY everything ON projects FOR SELECT TO wfmon_user USING (true)",
    ):
        with pytest.raises(Denied, match="must be owner"), conn.transaction():
            conn.execute(statement)


# -- the login roles themselves ----------------------------------------------------------


def test_login_roles_own_nothing_and_may_only_become_the_rls_roles(
    one_connection: Database, web_db: Database
) -> None:
    assert one_connection.login is not None and web_db.login is not None
    assert one_connection.login.name == "wfmon_authenticator"
    assert one_connection.login.rls_roles == {"wfmon_user", "wfmon_system"}
    assert web_db.login.name == "wfmon_web"
    assert web_db.login.rls_roles == {"wfmon_user"}


@pytest.mark.parametrize("login", ["authenticator", "web"])
def test_reset_role_leads_nowhere(
    one_connection: Database, web_db: Database, world: World, login: str
) -> None:
    db = one_connection if login == "authenticator" else web_db
    with db.as_user(world.auth["A"]) as conn:
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT current_user AS u").fetchone() == {"u": f"wfmon_{login}"}
        with (
            pytest.raises(Denied, match="permission denied for table projects"),
            conn.transaction(),
        ):
            conn.execute("SELECT count(*) FROM projects")
        _no_escape(conn)


@pytest.mark.parametrize("login", ["authenticator", "web"])
@pytest.mark.parametrize(
    "switch",
    [
        "SET ROLE wfmon",
        "SELECT set_config('role', 'wfmon', false)",
        "SET SESSION AUTHORIZATION wfmon",
        "SET ROLE postgres",
    ],
)
def test_no_switch_reaches_the_owner(
    one_connection: Database, web_db: Database, world: World, login: str, switch: str
) -> None:
    db = one_connection if login == "authenticator" else web_db
    with db.as_user(world.auth["A"]) as conn:
        with pytest.raises(Denied), conn.transaction():
            conn.execute(switch)
        _no_escape(conn)


def test_the_web_login_cannot_become_the_system_role(web_db: Database, world: World) -> None:
    with web_db.as_user(world.auth["A"]) as conn:
        for switch in ("SET ROLE wfmon_system", "SELECT set_config('role', 'wfmon_system', true)"):
            with pytest.raises(Denied, match="wfmon_system"), conn.transaction():
                conn.execute(switch)
        _no_escape(conn)


def test_system_role_reached_from_a_user_unit_of_work_still_owns_nothing(
    one_connection: Database, world: World
) -> None:
    """The authenticator may become wfmon_system (sync needs it): that is no owner either."""
    with one_connection.as_user(world.auth["A"]) as conn:
        conn.execute("SET ROLE wfmon_system")
        _no_escape(conn)
        conn.execute("RESET ROLE")
        _no_escape(conn)


# -- temporary tables --------------------------------------------------------------------


@pytest.mark.parametrize("login", ["authenticator", "web"])
def test_users_cannot_create_temporary_tables(
    one_connection: Database, web_db: Database, world: World, login: str
) -> None:
    db = one_connection if login == "authenticator" else web_db
    with db.as_user(world.auth["A"]) as conn:
        with pytest.raises(Denied, match="temporary tables"), conn.transaction():
            conn.execute("CREATE TEMP TABLE projects (id uuid, name text)")
        conn.execute("RESET ROLE")
        with pytest.raises(Denied, match="temporary tables"), conn.transaction():
            conn.execute("CREATE TEMP TABLE projects (id uuid, name text)")


def test_a_temporary_table_left_on_a_connection_never_shadows_the_real_one(
    one_connection: Database, world: World
) -> None:
    """wfmon_system may create temporary tables (dbt merges through them); one named like a
    real table and left on the pooled connection must not capture the next user's reads."""
    with one_connection.as_user(world.auth["A"]) as conn:
        real = {r["name"] for r in conn.execute("SELECT name FROM projects")}
    with one_connection.as_system() as conn:
        conn.execute("CREATE TEMP TABLE projects (id uuid, name text)")
        conn.execute("INSERT INTO pg_temp.projects VALUES (gen_random_uuid(), 'planted')")
    try:
        with one_connection.as_user(world.auth["A"]) as conn:
            assert {r["name"] for r in conn.execute("SELECT name FROM projects")} == real
            _no_escape(conn)
    finally:
        with one_connection.as_system() as conn:
            conn.execute("DROP TABLE pg_temp.projects")


# -- refusing an unsafe login role -------------------------------------------------------


def test_the_table_owner_is_refused_as_login_role(new_database_owner_url: str) -> None:
    with pytest.raises(UnsafeLoginRole, match=r"'wfmon'.*owns .* relations"):
        Database(new_database_owner_url).open()


def test_a_superuser_is_refused(admin_url: str) -> None:
    with pytest.raises(UnsafeLoginRole, match="is a superuser"):
        Database(admin_url).open()


def test_a_bypassrls_role_and_a_role_that_can_become_the_owner_are_refused(
    admin_url: str, fresh_url: str
) -> None:
    password = secrets.token_urlsafe(12)
    bypass, member = f"probe_bypass_{secrets.token_hex(3)}", f"probe_member_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for role, extra in ((bypass, sql.SQL("BYPASSRLS")), (member, sql.SQL("NOINHERIT"))):
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                    sql.Identifier(role), extra, sql.Literal(password)
                )
            )
        admin.execute(sql.SQL("GRANT wfmon TO {}").format(sql.Identifier(member)))
    try:
        for role, problem in ((bypass, "has BYPASSRLS"), (member, "owner of")):
            parts = urlsplit(fresh_url)
            url = urlunsplit(
                parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}")
            )
            with pytest.raises(UnsafeLoginRole, match=problem):
                Database(url).open()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for role in (bypass, member):
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def new_database_owner_url(fresh_url: str, endpoints: Endpoints) -> str:
    return _same_database(endpoints.migrations_url, fresh_url)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker", "--sync-only"]])
def test_wfmon_refuses_to_start_with_the_table_owner_as_login(
    new_database_owner_url: str, endpoints: Endpoints, command: list[str]
) -> None:
    env = {
        **os.environ,
        "WFMON_DATABASE_URL": new_database_owner_url,
        "WFMON_WEB_DATABASE_URL": new_database_owner_url,
        "WFMON_TEMPORAL_ADDRESS": endpoints.temporal_address,
        "WFMON_JWT_SECRET": "x" * 32,
    }
    wfmon = str(Path(sys.executable).parent / "wfmon")
    result = subprocess.run([wfmon, *command], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refuses to use database login role 'wfmon'" in result.stderr
    assert "owns" in result.stderr
    password = urlsplit(new_database_owner_url).password
    assert password and password not in result.stdout + result.stderr
