"""``wfmon demo``: the whole platform on embedded services, showing it working.

Steps: start PostgreSQL, Temporal (with its Web UI) and Redis; apply migrations; start a
``wfmon worker`` process (builder + sync); seed the demo organisation and run a few dozen
executions; sync them; print where everything runs and what was synced. Everything the
demo started is stopped by PID when it ends: Ctrl-C, SIGTERM, or ``--exit-after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wfmon.dev import postgres
from wfmon.dev.process import ServiceError, free_port, stop_pid
from wfmon.dev.services import EmbeddedServices, Endpoints, Service
from wfmon.settings import Settings, masked_service_url

if TYPE_CHECKING:
    from wfmon.db import Database

Say = Callable[[str], None]


def _say(line: str) -> None:
    print(line, flush=True)


@dataclass
class DemoOptions:
    exit_after: float | None = None


def demo_environment(settings: Settings, ep: Endpoints) -> dict[str, str]:
    """Environment for the demo's child processes: embedded endpoints, a secret key kept in
    the state directory, loopback connections allowed (the demo's connections point at the
    embedded services)."""
    from wfmon.connections.crypto import generate_key

    key = _state_secret(settings.state_path / "secret_key", lambda: generate_key("demo"))
    jwt = _state_secret(settings.state_path / "jwt_secret", lambda: secrets.token_urlsafe(32))
    env = {
        **os.environ,
        "WFMON_STATE_DIR": str(settings.state_path),
        "WFMON_DATABASE_URL": ep.database_url,
        "WFMON_WEB_DATABASE_URL": ep.web_database_url,
        "WFMON_DAGSTER_DATABASE_URL": ep.dagster_database_url,
        "WFMON_TEMPORAL_ADDRESS": ep.temporal_address,
        "WFMON_REDIS_URL": ep.redis_url,
        "WFMON_CONNECTIONS_ALLOW_LOOPBACK": "true",
    }
    env.setdefault("WFMON_SECRET_KEY", key)
    env.setdefault("WFMON_JWT_SECRET", jwt)
    return env


def _state_secret(path: Path, make: Callable[[], str]) -> str:
    """A secret kept (mode 0600) in the state directory, created on first use."""
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


@contextmanager
def child_process(
    argv: list[str],
    env: dict[str, str],
    log: Path,
    ready: str | Callable[[], bool],
    timeout: float = 60.0,
) -> Iterator[int]:
    """Run ``argv`` in its own session until the block ends; wait until ``ready`` (a line
    in its log, or a check) first. Stopped by PID (SIGTERM), then whatever is left of its
    process group is killed, so no grandchild outlives the demo."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    is_ready = ready if callable(ready) else lambda: ready in log.read_text(errors="replace")
    try:
        deadline = time.monotonic() + timeout
        while not is_ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise ServiceError(f"{' '.join(argv[:3])} did not start; log {log}:\n{tail}")
            time.sleep(0.2)
        yield proc.pid
    finally:
        stop_pid(proc.pid, signal.SIGTERM, timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_demo(settings: Settings, options: DemoOptions, say: Say = _say) -> int:
    from wfmon.migrate import apply_migrations

    services = EmbeddedServices(settings.state_path)
    started_here = not all(st.healthy for st in services.status())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    wfmon = str(Path(sys.executable).parent / "wfmon")
    logs = settings.state_path / "logs"
    try:
        say("starting embedded PostgreSQL, Temporal and Redis ...")
        ep = services.up()
        applied = apply_migrations(ep.migrations_url)
        say(f"schema up to date ({len(applied)} migration(s) applied now)")
        env = demo_environment(settings, ep)
        api_port, dagster_port = free_port(), free_port()
        dagster_url = f"http://127.0.0.1:{dagster_port}"
        with (
            child_process(
                [wfmon, "worker"], env, logs / "worker.log", "Ctrl-C to stop"
            ) as worker_pid,
            child_process(
                [wfmon, "serve", "--port", str(api_port)],
                env,
                logs / "api.log",
                "Uvicorn running on",
            ) as api_pid,
            child_process(
                [sys.executable, "-m", "wfmon_defs.devserver", "--port", str(dagster_port),
                 "--home", str(settings.state_path / "dagster")],
                env,
                logs / "dagster.log",
                lambda: _answers(f"{dagster_url}/server_info"),
                timeout=180,
            ) as dagster_pid,
        ):  # fmt: skip
            say(f"worker (builder + sync) running, pid {worker_pid}, log {logs / 'worker.log'}")
            say(f"web app running, pid {api_pid}, log {logs / 'api.log'}")
            say(f"Dagster (webserver + daemon) running, pid {dagster_pid}, log {logs}/dagster.log")
            summary = _seed_run_and_sync(settings, services, ep, env, say)
            api_url = f"http://127.0.0.1:{api_port}"
            say("")
            say("wfmon demo is running:")
            say(f"  web app           {api_url}  (API docs: {api_url}/api/docs)")
            say(f"  Dagster UI        {dagster_url}")
            for line in _signin_links(ep, env, api_url):
                say(line)
            say(f"  PostgreSQL        {masked_service_url(ep.database_url)}")
            say(f"  Temporal          {ep.temporal_address}")
            if ep.temporal_ui_url:
                say(f"  Temporal Web UI   {ep.temporal_ui_url}")
            say(f"  Redis             {ep.redis_url}")
            say(f"  state directory   {settings.state_path}")
            say("")
            for line in summary:
                say(line)
            say("waiting for Dagster's sensor and schedule to fill the statistics ...")
            say(_wait_for_statistics(ep, stop, timeout=240))
            say("")
            if options.exit_after is None:
                say("Press Ctrl-C to stop.")
            stop.wait(options.exit_after)
            say("stopping ...")
    finally:
        if started_here:
            services.down()
            say("embedded services stopped")
        else:
            say("embedded services were already running; leaving them up")
    return 0


def _seed_run_and_sync(
    settings: Settings, services: EmbeddedServices, ep: Endpoints, env: dict[str, str], say: Say
) -> list[str]:
    from temporalio.client import Client

    from wfmon.connections.crypto import Keyring
    from wfmon.db import Database
    from wfmon.dev.seed import run_executions, seed_world
    from wfmon.sync.batch import sync_many
    from wfmon.sync.discovery import discover, record_discovered
    from wfmon.sync.messages import SYNC_TASK_QUEUE

    pg_port = {s.service: s.port for s in services.status()}[Service.POSTGRES]
    assert pg_port is not None
    superuser = postgres.PostgresInstance(services.state_dir / "postgres", pg_port).url("postgres")
    shop_url = postgres.prepare_shop_database(superuser)

    with Database(ep.database_url) as db:
        world = seed_world(db, Keyring.parse(env["WFMON_SECRET_KEY"]), shop_url, ep.redis_url)
        say(f"demo organisation ready: {len(world.users)} users, {len(world.workflows)} workflows")

        async def go() -> list[str]:
            client = await Client.connect(ep.temporal_address)
            say("running demo executions (retries take a few seconds) ...")
            outcome = await run_executions(client, world)
            say(f"executions: {outcome['completed']} completed, {outcome['failed']} failed")
            found = await discover(client, exclude_task_queues=[SYNC_TASK_QUEUE])
            record_discovered(db, found)
            report = await sync_many(client, [d.ref for d in found])
            return [
                f"synced {report.synced} execution(s) into PostgreSQL in {report.seconds:.1f}s"
                + (f", {len(report.failed)} failed" if report.failed else ""),
                *_counts(db),
            ]

        return asyncio.run(go())


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait_for_statistics(ep: Endpoints, stop: threading.Event, timeout: float) -> str:
    """Wait until Dagster has synced the demo's executions and dbt has filled the
    statistics tables; say what it found."""
    from wfmon.db import Database
    from wfmon.db.statistics import count_statistics

    deadline = time.monotonic() + timeout
    with Database(ep.database_url) as db:
        while not stop.is_set():
            with db.as_system() as conn:
                row = count_statistics(conn)
            if row["workflows"] and row["projects"]:
                return (
                    f"statistics filled by Dagster: {row['workflows']} workflows, "
                    f"{row['projects']} projects, {row['runs']} runs counted"
                )
            if time.monotonic() > deadline:
                return f"statistics not filled after {timeout:.0f}s: see the Dagster UI"
            stop.wait(2)
    return "stopped before the statistics were filled"


def _signin_links(ep: Endpoints, env: dict[str, str], api_url: str) -> list[str]:
    """One sign-in link per demo user: a dev token in the URL fragment (never sent to the
    server, so never in its log), for local development only."""
    from pydantic import SecretStr

    from wfmon.api.tokens import signin_url, token_for
    from wfmon.db import Database
    from wfmon.dev.seed import DEMO_USERS

    settings = Settings(jwt_secret=SecretStr(env["WFMON_JWT_SECRET"]))
    with Database(ep.database_url) as db:
        return [
            f"  sign in as {email.split('@')[0]:<6}  "
            f"{signin_url(api_url, token_for(db, settings, email, ttl_hours=24))}"
            for email in DEMO_USERS
        ]


def _counts(db: Database) -> list[str]:
    """One line on the component executions the demo produced."""
    from wfmon.db.statistics import count_component_outcomes

    with db.as_system() as conn:
        rows = count_component_outcomes(conn)
    return [
        f"component executions: {rows['components']} "
        f"({rows['expected']} with expected retries, {rows['unexpected']} with unexpected "
        f"retries, {rows['failed']} failed)"
    ]
