"""``wfmon serve``'s process model: one web process per core by default.

Each process is a uvicorn worker with its own interpreter (so its own GIL), its own
share of the database pool and its own LISTEN connection for live pages; all of them
accept on one listening socket. uvicorn's supervisor starts them, restarts one that dies
and stops them all on SIGINT/SIGTERM. See docs/architecture/web-app.md for why.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

# wfmon.api.app is imported inside the functions: a worker process imports this module
# to unpickle its config, before it can answer the supervisor's health checks, and the
# app's import is the slow part of its start.

log = logging.getLogger("uvicorn.error")

#: How ``wfmon serve`` tells each worker process its share of the database pool (uvicorn
#: starts workers from an import string, so the factory takes no arguments).
POOL_ENV = "WFMON_SERVE_POOL_SIZE"
#: The fewest database connections one web process gets.
MIN_POOL_PER_PROCESS = 5
#: Seconds a worker may take to answer the supervisor's health check.
HEALTH_CHECK_TIMEOUT_S = 30


def default_processes() -> int:
    """How many processes ``wfmon serve`` runs by default: one per core it may run on."""
    return max(1, len(os.sched_getaffinity(0)))


def pool_per_process(processes: int) -> int:
    """One process's share of the web app's connections: the processes together hold
    about as many as one process alone (``DEFAULT_POOL_SIZE``), each at least a few."""
    from wfmon.api.app import DEFAULT_POOL_SIZE

    return max(MIN_POOL_PER_PROCESS, -(-DEFAULT_POOL_SIZE // processes))


def web_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory): settings from the environment
    the parent was started with, the pool share it set."""
    from wfmon.api.app import DEFAULT_POOL_SIZE, create_app

    return create_app(pool_size=int(os.environ.get(POOL_ENV, DEFAULT_POOL_SIZE)))


class ListeningConfig(uvicorn.Config):
    """uvicorn's config, with a socket that listens as soon as it is bound (uvicorn
    itself listens only in each worker): a client that connects while the workers start
    waits in the backlog instead of being refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A busy machine can take longer than uvicorn's 5 s to start a worker; one that
        # misses the health check is killed and started again, which only adds load.
        kwargs.setdefault("timeout_worker_healthcheck", HEALTH_CHECK_TIMEOUT_S)
        super().__init__(*args, **kwargs)

    def bind_socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(self.backlog)
        sock.set_inheritable(True)
        return sock


class Supervisor(Multiprocess):
    """uvicorn's supervisor, saying "Uvicorn running on ..." once every worker serves
    (as one ``wfmon serve`` process says it once it serves), not when the socket is bound."""

    def init_processes(self) -> None:
        super().init_processes()
        timeout = self.config.timeout_worker_healthcheck
        if all(p.wait_until_ready(timeout, self.should_exit) for p in self.processes):
            config = self.config
            log.info(
                "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", config.host, config.port
            )
        elif not self.should_exit.is_set():
            log.error("a web worker did not start within %d s (see above)", timeout)


def serve_processes(processes: int, *, host: str, port: int, log_config: dict[str, Any]) -> None:
    """Serve the app from ``processes`` worker processes until SIGINT/SIGTERM. Raises
    :class:`OSError` when the address cannot be listened on (nothing started)."""
    os.environ[POOL_ENV] = str(pool_per_process(processes))
    config = ListeningConfig(
        f"{__name__}:web_app",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        log_config=log_config,
    )
    sock = config.bind_socket()  # before logging is configured: errors as one line
    Supervisor(config, sockets=[sock]).run()
