"""Alert tests: real receivers (an HTTP server that checks the HMAC signature, aiosmtpd as
the SMTP server), the session's real PostgreSQL, and the real web app for API tests.

Executions are seeded with :func:`wfmon.testing.write_execution` (the sync's own writers);
rules are evaluated by calling :mod:`wfmon.alerts` directly (the sensor is tested once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from pydantic import SecretStr

from wfmon.alerts.delivery import DeliveryPolicy
from wfmon.api.app import RunningServer, create_app, start_server
from wfmon.connections import Keyring, NetworkPolicy, generate_key
from wfmon.db import Database
from wfmon.dev.process import free_port
from wfmon.settings import Settings

JWT_SECRET = "wfmon-alert-tests-secret-0123456789"
SIGNING_SECRET = "whsec-0123456789abcdef-SIGNING"
SMTP_USER = "alerts"
SMTP_PASSWORD = "smtp-Pa55word-SECRET"
#: Retries come quickly in tests (production: 2 s doubling up to 5 min).
FAST_RETRIES = DeliveryPolicy(first_backoff_seconds=0.05, max_backoff_seconds=0.2, timeout=5)
POLICY = NetworkPolicy.permissive_local()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None
    #: ``time.monotonic()`` when it arrived.
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on a free 127.0.0.1 port. Webhook requests (under ``/hook``) must
    carry a valid ``X-Wfmon-Signature``; ``failing`` makes it answer 503."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    failing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def clear(self) -> None:
        with self.lock:
            self.received.clear()

    def wait_for(self, n: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} requests, got {len(self.received)}")


def _handler(receiver_ref: list[Receiver]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = receiver_ref[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            ok: bool | None = None
            if self.path.startswith("/hook"):
                ts = headers.get("x-wfmon-timestamp", "")
                mac = hmac.new(SIGNING_SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256)
                ok = hmac.compare_digest(
                    headers.get("x-wfmon-signature", ""), "sha256=" + mac.hexdigest()
                )
            if receiver.failing:
                self.send_response(503)
                self.end_headers()
                return
            with receiver.lock:
                receiver.received.append(Received(self.path, headers, body, ok))
            self.send_response(200 if ok is not False else 401)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A :class:`Receiver` on a free 127.0.0.1 port, stopped at the end."""
    ref: list[Receiver] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    rec = Receiver(server)
    ref.append(rec)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as rec:
        yield rec


@dataclass
class Mailbox:
    messages: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class Smtp:
    port: int
    mailbox: Mailbox


@contextmanager
def running_smtp(handler: Any, **options: Any) -> Iterator[int]:
    """aiosmtpd with ``handler`` on a free 127.0.0.1 port (yielded), requiring AUTH
    LOGIN/PLAIN as :data:`SMTP_USER`; ``options`` go to aiosmtpd (TLS, STARTTLS)."""
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_required=True,
        **options,
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def smtp() -> Iterator[Smtp]:
    """An SMTP server taking AUTH without TLS (loopback only)."""
    mailbox = Mailbox()
    with running_smtp(mailbox, auth_require_tls=False) as port:
        yield Smtp(port, mailbox)


#: The session's WFMON_SECRET_KEY-style keyring (what project connections use too).
KEYRING = generate_key("k1")


@pytest.fixture(scope="session")
def keyring() -> Keyring:
    return Keyring.parse(KEYRING)


@dataclass
class App:
    server: RunningServer
    db: Database

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def alert_app(db: Database, keyring: Keyring) -> Iterator[App]:
    """The real web app (uvicorn on a free port) over the session database."""
    app = create_app(
        Settings(jwt_secret=SecretStr(JWT_SECRET)), db=db, keyring=keyring, policy=POLICY
    )
    server = start_server(app)
    try:
        yield App(server, db)
    finally:
        server.stop()


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
