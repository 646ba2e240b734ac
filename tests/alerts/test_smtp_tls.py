"""E-mail alerts over TLS: STARTTLS (the default, port 587 style) and implicit TLS (SMTPS,
port 465 style) against aiosmtpd servers with a certificate from a throwaway CA
(``trustme``), sent with the rule's "Send test alert" through the real web app.

The channel checks certificates as any client does (``ssl.create_default_context()``: the
system's CAs, or ``SSL_CERT_FILE``): a private CA is trusted by pointing ``SSL_CERT_FILE``
at it, and a certificate nobody vouches for is refused with a reason that names TLS and
never the password.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import trustme
from aiosmtpd.smtp import Envelope

from tests.alerts.conftest import SMTP_PASSWORD, SMTP_USER, App, running_smtp
from tests.alerts.test_api import http
from wfmon.db import Database
from wfmon.testing import WorkflowOwner, make_owner

#: aiosmtpd warns that the SMTPS server takes AUTH without STARTTLS (its session is TLS).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@dataclass
class TlsMailbox:
    """The messages received, each with whether its session was encrypted."""

    received: list[tuple[Envelope, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        # session.ssl is set after STARTTLS only; an SMTPS transport is TLS from the start.
        encrypted = session.ssl is not None or server.transport.get_extra_info("ssl_object")
        self.received.append((envelope, bool(encrypted)))
        return "250 OK"


@dataclass
class TlsServer:
    port: int
    mailbox: TlsMailbox


@pytest.fixture(scope="module")
def owner(db: Database) -> WorkflowOwner:
    return make_owner(db, "alice-mail-tls")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def trusted_ca(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The throwaway CA as the only one the process trusts (as an operator's private CA)."""
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))


def _serve(**options: Any) -> Iterator[TlsServer]:
    mailbox = TlsMailbox()
    with running_smtp(mailbox, **options) as port:
        yield TlsServer(port, mailbox)


@pytest.fixture(scope="module")
def starttls_server(server_context: ssl.SSLContext) -> Iterator[TlsServer]:
    """Plain SMTP that demands STARTTLS before anything else (AUTH only over TLS)."""
    yield from _serve(tls_context=server_context, require_starttls=True, auth_require_tls=True)


@pytest.fixture(scope="module")
def smtps_server(server_context: ssl.SSLContext) -> Iterator[TlsServer]:
    """SMTP inside TLS from the first byte. (aiosmtpd counts only STARTTLS as TLS for its
    AUTH rule, so that rule is off here: every byte of this session is encrypted.)"""
    yield from _serve(
        ssl_context=server_context, server_hostname="127.0.0.1", auth_require_tls=False
    )


def _test_alert(app: App, owner: WorkflowOwner, port: int, security: str) -> dict[str, Any]:
    """Create an e-mail rule for ``port`` and press "Send test alert"; the API's answer."""
    a = http(app, owner)
    channel = {"type": "email", "host": "127.0.0.1", "port": port, "security": security,
               "username": SMTP_USER, "password": SMTP_PASSWORD,
               "sender": "wfmon@example.com", "recipients": ["ops@example.com"]}  # fmt: skip
    rule = a.post(
        f"/api/projects/{owner.project.id}/alert-rules",
        {
            "name": f"mail over {security} {uuid4().hex[:6]}",
            "kind": "execution_failed",
            "channel": channel,
        },
    ).json()
    reply = a.post(f"/api/alert-rules/{rule['id']}/test")
    assert SMTP_PASSWORD not in reply.text
    result: dict[str, Any] = reply.json()
    return result


@pytest.mark.usefixtures("trusted_ca")
def test_starttls_upgrades_before_auth_and_delivers(
    alert_app: App, starttls_server: TlsServer, owner: WorkflowOwner
) -> None:
    result = _test_alert(alert_app, owner, starttls_server.port, "starttls")
    assert result["ok"] is True, result["delivery"]["reason"]
    [(envelope, encrypted)] = starttls_server.mailbox.received
    assert encrypted, "the message travelled before STARTTLS"
    assert envelope.rcpt_tos == ["ops@example.com"]


@pytest.mark.usefixtures("trusted_ca")
def test_implicit_tls_delivers(
    alert_app: App, smtps_server: TlsServer, owner: WorkflowOwner
) -> None:
    result = _test_alert(alert_app, owner, smtps_server.port, "tls")
    assert result["ok"] is True, result["delivery"]["reason"]
    [(_, encrypted)] = smtps_server.mailbox.received
    assert encrypted


def test_an_untrusted_certificate_is_refused_with_the_reason(
    alert_app: App,
    starttls_server: TlsServer,
    smtps_server: TlsServer,
    owner: WorkflowOwner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Trust another CA only: the servers' certificates are vouched for by nobody trusted.
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger))
    before = len(starttls_server.mailbox.received) + len(smtps_server.mailbox.received)
    for port, security in ((starttls_server.port, "starttls"), (smtps_server.port, "tls")):
        result = _test_alert(alert_app, owner, port, security)
        assert result["ok"] is False
        reason = result["delivery"]["reason"]
        assert reason.startswith("TLS error") and "CERTIFICATE_VERIFY_FAILED" in reason, reason
    assert len(starttls_server.mailbox.received) + len(smtps_server.mailbox.received) == before


def test_a_server_that_demands_starttls_refuses_a_plain_session(
    alert_app: App, starttls_server: TlsServer, owner: WorkflowOwner
) -> None:
    before = len(starttls_server.mailbox.received)
    result = _test_alert(alert_app, owner, starttls_server.port, "none")
    assert result["ok"] is False
    reason = result["delivery"]["reason"]
    assert reason.startswith("the SMTP server does not offer") and "AUTH" in reason, reason
    assert len(starttls_server.mailbox.received) == before
