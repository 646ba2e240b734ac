"""The wfmon web app: JSON API under ``/api`` (OpenAPI at ``/api/openapi.json``, docs at
``/api/docs``) and server-rendered pages, in one FastAPI application.

:func:`create_app` builds it from settings (or explicit dependencies, for tests and the
demo); :func:`serve` runs it in the foreground; :func:`start_server` runs it on a
background thread and returns a handle with its URL and ``stop()``.

Guarantees: every request is authenticated by an HS256 token (``sub`` = the user's
``auth_user_id``; ``Authorization: Bearer``, or the sign-in cookie the pages use) and runs
under that user's row-level security; errors are JSON
(:mod:`wfmon.api.errors`); the app works without Temporal for everything that does not
sync (reads then say the data may be stale).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from wfmon.api.deps import ApiContext, TemporalProvider
from wfmon.api.errors import install_error_handlers
from wfmon.api.live import LiveHub, hub_of
from wfmon.api.logs import log_config
from wfmon.api.routers import (
    alerts,
    attention,
    compare,
    connections,
    executions,
    export,
    failures,
    graph,
    pages,
    projects,
    rerun,
    search,
    stream,
    workflows,
)
from wfmon.connections.crypto import Keyring
from wfmon.connections.errors import KeyringError
from wfmon.connections.policy import NetworkPolicy
from wfmon.db import Database
from wfmon.db.database import SYSTEM_ROLE, USER_ROLE
from wfmon.settings import Settings, SettingsError, load_settings, resolve_endpoints

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
#: Database connections the app may hold: enough for 20 concurrent clients.
DEFAULT_POOL_SIZE = 20


def _keyring(settings: Settings) -> tuple[Keyring | None, str | None]:
    if settings.secret_key is None:
        return None, (
            "WFMON_SECRET_KEY is not set: project connections need a key to encrypt their URLs"
        )
    try:
        return Keyring.parse(settings.secret_key.get_secret_value()), None
    except KeyringError as exc:
        return None, str(exc)


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    temporal_address: str | None = None,
    keyring: Keyring | None = None,
    policy: NetworkPolicy | None = None,
    sync_timeout: float = 15.0,
    live_database_url: str | None = None,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> FastAPI:
    """The app. Unset dependencies come from ``settings`` (``load_settings()`` when None).

    ``db`` given: the caller owns it (opens and closes it). Otherwise the app opens a pool
    on ``WFMON_WEB_DATABASE_URL`` (else ``WFMON_DATABASE_URL``, else the embedded Postgres's
    web login) at startup and closes it at shutdown; it refuses a login role that could
    bypass row-level security. Raises :class:`SettingsError` when ``WFMON_JWT_SECRET`` is not set.

    Live push (:mod:`wfmon.api.live`) LISTENs on one connection of its own to the web
    database (``live_database_url`` when ``db`` is given; without it pages poll).
    """
    settings = settings or load_settings()
    if settings.jwt_secret is None or not settings.jwt_secret.get_secret_value():
        raise SettingsError("WFMON_JWT_SECRET is not set: the API needs it to verify tokens")
    owns_db = db is None
    if owns_db:
        live_database_url = resolve_endpoints(settings).web_database_url
    database = db or Database(live_database_url or "", max_size=pool_size)
    hub = LiveHub(live_database_url)
    keyring_error = None
    if keyring is None:
        keyring, keyring_error = _keyring(settings)
    ctx = ApiContext(
        settings=settings,
        db=database,
        jwt_secret=settings.jwt_secret.get_secret_value(),
        temporal=TemporalProvider(settings, temporal_address),
        policy=policy or NetworkPolicy.from_env(),
        keyring=keyring,
        keyring_error=keyring_error,
        sync_timeout=sync_timeout,
        owns_db=owns_db,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_db:
            await asyncio.to_thread(database.open)
            if database.login and SYSTEM_ROLE in database.login.rls_roles:
                log.warning(
                    "the web app's database login %r can become %s: give the web app a login "
                    "that may only become %s (WFMON_WEB_DATABASE_URL)",
                    database.login.name,
                    SYSTEM_ROLE,
                    USER_ROLE,
                )
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            if owns_db:
                await asyncio.to_thread(database.close)

    app = FastAPI(
        title="wfmon",
        version="0.1.0",
        summary="What your workflows did: executions, components, retries, statistics.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.wfmon = ctx
    app.state.live = hub
    install_error_handlers(app)
    for module in (projects, workflows, executions, connections, export, compare):
        app.include_router(module.router)
    app.include_router(workflows.policies)
    for mine in (failures, attention, rerun, graph, alerts):
        app.include_router(mine.router)
        app.include_router(mine.pages)
    app.include_router(search.router)
    app.include_router(stream.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def serve(
    settings: Settings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Run the app in the foreground until SIGINT/SIGTERM. The access log redacts
    credentials in request targets (:mod:`wfmon.api.logs`)."""
    app = create_app(settings)
    freeze_startup_objects()
    uvicorn.run(app, host=host, port=port, log_level=log_level, log_config=log_config())


def freeze_startup_objects() -> None:
    """Put every object alive now (modules, the app, its models and schemas) out of the
    garbage collector's reach (:func:`gc.freeze`), in a serving process once its app is
    built: a full collection then walks only what requests allocated, instead of pausing
    every request in flight while it walks the whole heap."""
    gc.collect()
    gc.freeze()


@dataclass
class RunningServer:
    """A server started by :func:`start_server`: its base URL and how to stop it."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, end live streams, finish in-flight requests, run shutdown
        (closes an owned pool)."""
        hub = hub_of(self.server.config.app)
        if hub is not None:
            hub.close_streams()
        self.server.should_exit = True
        self.thread.join(timeout)


def start_server(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    startup_timeout: float = 30.0,
) -> RunningServer:
    """Serve ``app`` on a background thread. ``port=0`` takes a free port: the socket is
    bound here first, so the port cannot be taken by another process in between."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: server.run(sockets=[sock]), name="wfmon-api", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the wfmon web app did not start (see the log above)")
        time.sleep(0.02)
    return RunningServer(url=f"http://{host}:{bound_port}", server=server, thread=thread)
