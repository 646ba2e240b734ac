"""``wfmon serve``'s process model: one web process per core by default.

Each process is a uvicorn worker with its own interpreter (so its own GIL), its own
share of the database pool and its own LISTEN connection for live pages. Each worker
accepts on a listening socket of its own, all bound to the one address with
``SO_REUSEPORT``, so the kernel spreads new connections over the workers: on one shared
socket, the first worker to wake accepted every connection waiting (a burst of 20
keep-alive clients split 18:2), and one process then served most requests while the
other idled. uvicorn's supervisor starts them, restarts one that dies (on its own
socket) and stops them all on SIGINT/SIGTERM. See docs/architecture/web-app.md for why.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

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
    from wfmon.api.app import DEFAULT_POOL_SIZE, create_app, freeze_startup_objects

    app = create_app(pool_size=int(os.environ.get(POOL_ENV, DEFAULT_POOL_SIZE)))
    freeze_startup_objects()
    return app


class ListeningConfig(uvicorn.Config):
    """uvicorn's config, with sockets that listen as soon as they are bound (uvicorn
    itself listens only in each worker): a client that connects while the workers start
    waits in a backlog instead of being refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A busy machine can take longer than uvicorn's 5 s to start a worker; one that
        # misses the health check is killed and started again, which only adds load.
        kwargs.setdefault("timeout_worker_healthcheck", HEALTH_CHECK_TIMEOUT_S)
        super().__init__(*args, **kwargs)

    def bind_sockets(self, count: int) -> list[socket.socket]:
        """``count`` listening sockets on the config's address, one per worker, bound with
        ``SO_REUSEPORT``. Raises :class:`OSError` (nothing left bound) when the address
        is taken: a first plain bind checks that nobody listens there, as a single
        socket's bind would, since a reuse-port group would otherwise join another
        server's (one of the same user's)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((self.host, self.port))
            port = probe.getsockname()[1]  # the port given, or the one picked for 0
        sockets: list[socket.socket] = []
        try:
            for _ in range(count):
                sock = socket.socket(family)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((self.host, port))
                sock.listen(self.backlog)
                sock.set_inheritable(True)
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        self.port = port
        return sockets


class Supervisor(Multiprocess):
    """uvicorn's supervisor, with one socket per worker (a replacement worker takes over
    the socket of the one it replaces, with the connections waiting on it), saying
    "Uvicorn running on ..." once every worker serves (as one ``wfmon serve`` process says
    it once it serves), not when the sockets are bound."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        if len(sockets) != config.workers:
            raise ValueError(f"one socket per worker: {len(sockets)} for {config.workers}")
        super().__init__(config, sockets)

    def _process(self, slot: int) -> Process:
        process = Process(self.config, [self.sockets[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._process(slot) for slot in range(self.processes_num)]
        timeout = self.config.timeout_worker_healthcheck
        if all(p.wait_until_ready(timeout, self.should_exit) for p in self.processes):
            config = self.config
            log.info(
                "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", config.host, config.port
            )
        elif not self.should_exit.is_set():
            log.error("a web worker did not start within %d s (see above)", timeout)

    # The two methods below are uvicorn 0.54's, with each new process given its slot's
    # socket instead of all of them.

    def restart_all(self) -> None:
        """Replaces each worker, bringing its replacement into service before retiring
        the old worker (SIGHUP)."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._process(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error(
                        "New child process [%s] was not ready in time; keeping worker [%s] "
                        "and aborting the restart.",
                        new.pid,
                        old.pid,
                    )
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: kill it
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving: the app is broken and would fail the same way
                # on every restart.
                log.error(
                    "Child process [%s] failed to start, stopping the parent process.", process.pid
                )
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("Child process [%s] died", process.pid)
            self.processes[slot] = self._process(slot)


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
    sockets = config.bind_sockets(processes)  # before logging is configured: errors as one line
    Supervisor(config, sockets).run()
