"""The Dagster instance of wfmon: ``dagster.yaml`` on dagster-postgres, and how to start
``dagster dev`` (webserver + daemon) or ``dagster-webserver`` against it.

Typical use (what ``make demo`` does, through ``python -m wfmon_defs.devserver``)::

    write_instance(dagster_home, resolve_endpoints(settings).dagster_database_url)
    pid = spawn(                  # wfmon.dev.process: its own session, output to the log
        dagster_dev_command(port=3000),
        dagster_home / "dagster.log",
        env=dagster_environment(dagster_home),
        cwd=PROJECT_ROOT,
    )
    wait_for_webserver("http://127.0.0.1:3000", timeout=60, pid=pid)
    ...
    stop_dagster(pid)             # SIGTERM, then SIGKILL of the process group after a grace

Measured facts (DESIGN.md): started from a script in the background, ``dagster dev``
ignores SIGINT/SIGTERM unless started in its own session with ``env --default-signal=INT``;
it answers in ~10 s and uses ~700 MB; set ``TMPDIR``; dagster-dbt needs ``dbt`` on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from resources.dbt import STATISTICS_REFRESH_TAGS

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
WORKSPACE_FILE: Final = PROJECT_ROOT / "workspace.yaml"


def dagster_storage_url(database_url: str) -> str:
    """The URL dagster-postgres needs: ``postgresql+psycopg2://`` (SQLAlchemy 2.1 maps a
    plain ``postgresql://`` to psycopg 3, with which dagster-postgres fails on NOTIFY).

    Raises :class:`ValueError` for a URL that is not PostgreSQL.
    """
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        raise ValueError(
            f"Dagster storage needs a postgresql:// URL (got {parts.scheme or 'no'} scheme)"
        )
    if not parts.hostname or not parts.path.strip("/"):
        raise ValueError("Dagster storage URL must name a host and a database")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))


def instance_config(dagster_database_url: str, *, max_concurrent_runs: int = 4) -> dict[str, Any]:
    """The content of ``dagster.yaml``."""
    return {
        "storage": {"postgres": {"postgres_url": dagster_storage_url(dagster_database_url)}},
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": max_concurrent_runs,
                # One statistics refresh at a time: concurrent MERGEs race on new keys.
                "tag_concurrency_limits": [
                    {"key": key, "value": value, "limit": 1}
                    for key, value in STATISTICS_REFRESH_TAGS.items()
                ],
            },
        },
        "run_launcher": {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"},
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


def write_instance(dagster_home: Path, dagster_database_url: str) -> None:
    """Write ``<dagster_home>/dagster.yaml`` (dagster-postgres storage on the given database,
    queued runs with one statistics refresh at a time). Creates ``dagster_home``.

    The file holds the database password: it is written with mode 0600 (replacing any
    earlier file atomically). Raises :class:`ValueError` for a URL that is not PostgreSQL.
    """
    content = instance_config(dagster_database_url)
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    tmp = dagster_home / ".dagster.yaml.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Written by wfmon_defs.instance.write_instance: do not edit by hand.\n")
        json.dump(content, f, indent=2)  # JSON is valid YAML
        f.write("\n")
    tmp.replace(target)


def dagster_environment(
    dagster_home: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment for ``dagster dev`` / webserver / daemon: ``DAGSTER_HOME``, a private
    ``TMPDIR`` under it, and the venv's ``bin`` first on ``PATH`` (for ``dbt``)."""
    env = dict(os.environ if base is None else base)
    tmp = dagster_home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        {
            "DAGSTER_HOME": str(dagster_home.resolve()),
            "TMPDIR": str(tmp.resolve()),
            "PATH": os.pathsep.join([venv_bin, env.get("PATH", "")]),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    return env


def dagster_dev_command(
    *, port: int, host: str = "127.0.0.1", workspace: Path = WORKSPACE_FILE
) -> list[str]:
    """``dagster dev`` (webserver and daemon); start it with
    :func:`wfmon.dev.process.spawn` (its own session) from :data:`PROJECT_ROOT`."""
    return _venv_program(
        "dagster", "dev", "-w", str(workspace), "--host", host, "--port", str(port)
    )


def webserver_command(
    *, port: int, host: str = "127.0.0.1", workspace: Path = WORKSPACE_FILE
) -> list[str]:
    """``dagster-webserver`` alone (no daemon: sensors and schedules do not tick); start
    it like :func:`dagster_dev_command`."""
    return _venv_program(
        "dagster-webserver", "-w", str(workspace), "--host", host, "--port", str(port)
    )


def _venv_program(program: str, *args: str) -> list[str]:
    """``env --default-signal=INT <venv program> ...``: SIGINT restored (a process started
    in the background ignores it). Started in its own session (process group = its pid),
    ``kill -TERM <pid>`` stops it and its children."""
    return ["env", "--default-signal=INT", str(Path(sys.executable).parent / program), *args]


def wait_for_webserver(url: str, *, timeout: float = 90.0, pid: int | None = None) -> None:
    """Return once ``<url>/server_info`` answers; raise :class:`TimeoutError` otherwise,
    or :class:`RuntimeError` as soon as process ``pid`` (when given) has exited."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if pid is not None and not _running(pid):
            raise RuntimeError(f"Dagster (pid {pid}) exited before answering at {url}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"Dagster webserver at {url} did not answer within {timeout:.0f}s: {last}")


def _running(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return done == 0


def stop_dagster(pid: int, *, grace: float = 30.0) -> None:
    """Stop a process started with :func:`dagster_dev_command` / :func:`webserver_command`:
    SIGTERM to it, then SIGKILL to its process group (= its pid: its own session) if it
    has not exited after ``grace`` seconds. Returns when the process is gone."""

    def alive() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # reap it if it is our child
            done, _ = os.waitpid(pid, os.WNOHANG)
            return done == 0
        except ChildProcessError:
            return True

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive():
        time.sleep(0.2)
    # Whatever is left of its session (code server, daemon, run workers), by process group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    while alive():
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while session_members(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def session_members(session_id: int) -> list[int]:
    """Live (non-zombie) processes of the session ``session_id`` (Linux ``/proc``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces, split after ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members
