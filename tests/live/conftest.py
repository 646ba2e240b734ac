"""Live push tests: the real app (uvicorn on a free port) with its LISTEN hub on the web
login, over the session's real PostgreSQL; writes go through the sync's own writers
(``wfmon.testing.write_execution``) as the system role, and streams are read over HTTP.

Temporal is pointed at a closed port: the pages then answer from the database at once
("showing the last synced data"), so the stream and the refetch are what is tested.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from pydantic import SecretStr

from wfmon.api.app import RunningServer, create_app, start_server
from wfmon.api.live import LiveHub, hub_of
from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.settings import Settings
from wfmon.testing import WorkflowOwner, make_owner

JWT_SECRET = "wfmon-live-tests-secret-of-32-bytes-or-more"
DEAD_TEMPORAL = "127.0.0.1:1"


@dataclass
class Frame:
    event: str
    data: dict[str, Any]


class SseStream:
    """One Server-Sent Events stream, read on a thread into a queue of :class:`Frame`."""

    def __init__(self, base: str, path: str, token: str) -> None:
        parts = urlsplit(base)
        self._conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        self._conn.request(
            "GET", path, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        )
        self.response = self._conn.getresponse()
        self.status = self.response.status
        self.frames: queue.Queue[Frame | None] = queue.Queue()
        self.ended = threading.Event()
        if self.status == 200:
            assert self._conn.sock is not None
            self._conn.sock.settimeout(None)  # heartbeats keep it alive; close() ends it
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.body = json.loads(self.response.read() or b"{}")

    def _read(self) -> None:
        event, data = "message", ""
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if data:
                        self.frames.put(Frame(event, json.loads(data)))
                    event, data = "message", ""
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass
        finally:
            self.ended.set()
            self.frames.put(None)

    def next(self, timeout: float = 5.0) -> Frame | None:
        """The next frame (skipping none), or None at the end or after ``timeout``."""
        try:
            return self.frames.get(timeout=timeout)
        except queue.Empty:
            return None

    def expect(self, event: str, timeout: float = 5.0) -> Frame:
        frame = self.next(timeout)
        assert frame is not None, f"no {event!r} frame within {timeout} s"
        assert frame.event == event, frame
        return frame

    def quiet(self, seconds: float) -> None:
        """Nothing arrives within ``seconds``."""
        frame = self.next(seconds)
        assert frame is None, f"unexpected frame {frame}"

    def close(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()


@dataclass
class LiveWorld:
    server: RunningServer
    hub: LiveHub
    db: Database
    endpoints: Endpoints
    alice: WorkflowOwner
    bob: WorkflowOwner

    @property
    def url(self) -> str:
        return self.server.url

    def token(self, who: WorkflowOwner) -> str:
        return who.dev_token(JWT_SECRET)

    def stream(self, who: WorkflowOwner, path: str) -> SseStream:
        return SseStream(self.url, path, self.token(who))


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


def serve_live_app(endpoints: Endpoints, web_db: Database) -> RunningServer:
    settings = Settings(jwt_secret=SecretStr(JWT_SECRET), temporal_address=DEAD_TEMPORAL)
    app = create_app(
        settings,
        db=web_db,
        temporal_address=DEAD_TEMPORAL,
        live_database_url=endpoints.web_database_url,
        sync_timeout=0.5,
    )
    hub = hub_of(app)
    assert hub is not None
    hub.backoff = (1.5, 1.5)  # long enough for a test (and a browser) to see the gap
    server = start_server(app)
    wait_until(lambda: hub.listening, what="the hub to listen")
    return server


@pytest.fixture(scope="session")
def web_db(endpoints: Endpoints, database_url: str) -> Iterator[Database]:
    """The web app's own pool, on the web login (it may only become wfmon_user)."""
    with Database(endpoints.web_database_url, max_size=8) as database:
        yield database


@pytest.fixture(scope="session")
def live(endpoints: Endpoints, db: Database, web_db: Database) -> Iterator[LiveWorld]:
    server = serve_live_app(endpoints, web_db)
    hub = hub_of(server.server.config.app)
    assert hub is not None
    try:
        alice = make_owner(db, "alice-live", visibility="public")
        bob = make_owner(db, "bob-live")
        yield LiveWorld(server, hub, db, endpoints, alice, bob)
    finally:
        server.stop()


def execution_id_of(frame: Frame) -> UUID:
    return UUID(frame.data["execution_id"])
