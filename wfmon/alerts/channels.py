"""Sending one alert over one channel: a signed JSON webhook, a Slack-compatible incoming
webhook, or e-mail over SMTP.

Guarantees:

- the target's host is resolved and checked against the :class:`NetworkPolicy` of project
  connections (no loopback / private / link-local targets unless allowed), and wfmon
  connects to the checked address (no redirect is followed);
- every failure raises :class:`ChannelError` with a reason safe to store and show: URLs
  are stripped from it and the channel's secrets are masked out, whatever the exception
  said;
- nothing here logs.

Webhook requests carry ``X-Wfmon-Timestamp`` (Unix seconds), ``X-Wfmon-Delivery`` (the
delivery id, the same on every retry) and ``X-Wfmon-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body>`` with the rule's signing secret
(:func:`signature`; docs/user-guide/alerts.md shows how to check it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Final
from urllib.parse import urlsplit

from wfmon.alerts.errors import ChannelError, InvalidRule
from wfmon.alerts.model import WEBHOOK_SCHEMA, Alert, ChannelType
from wfmon.connections.errors import HostNotAllowed
from wfmon.connections.policy import NetworkPolicy

DEFAULT_TIMEOUT: Final = 10.0
SIGNATURE_HEADER: Final = "X-Wfmon-Signature"
TIMESTAMP_HEADER: Final = "X-Wfmon-Timestamp"
DELIVERY_HEADER: Final = "X-Wfmon-Delivery"
_URL: Final = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_MAX_REASON: Final = 300


@dataclass(frozen=True)
class ChannelTarget:
    """A channel with its decrypted secret part. Never log it (its repr hides the secrets)."""

    type: ChannelType
    config: dict[str, Any]
    secret: dict[str, str]

    def __repr__(self) -> str:
        return f"ChannelTarget(type={self.type.value!r}, secret=***)"

    def secrets(self) -> list[str]:
        return [v for v in self.secret.values() if v]


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URLs (``<url>``) and without any of ``secrets`` (``***``), cut to a
    few hundred characters: safe for the delivery log and error messages."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL.sub("<url>", text)
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` keyed with ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# -- validation and masking (no network) -------------------------------------------------------


def check_http_url(url: str, policy: NetworkPolicy | None) -> None:
    """An absolute http(s) URL with a host; a denied IP literal is rejected at once. The
    message never repeats the URL."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url.strip()):
        raise InvalidRule("channel.url must be one line without spaces or control characters")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRule("channel.url must be an http:// or https:// URL with a host")
    try:
        _ = parts.port
    except ValueError:
        raise InvalidRule("channel.url has an invalid port") from None
    if policy is not None:
        try:
            policy.check_literal(parts.hostname)
        except HostNotAllowed as exc:
            raise InvalidRule(f"channel.url: {exc}".replace("connection's", "channel's")) from None


def mask_http_url(url: str) -> str:
    """``scheme://host/…``: enough to recognise the target, nothing of its path or token."""
    parts = urlsplit(url.strip())
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


# -- rendering ---------------------------------------------------------------------------------


def webhook_body(alert: Alert, delivery_id: str) -> dict[str, Any]:
    """The webhook's JSON body (schema ``wfmon.alert/v1``)."""
    return {
        "schema": WEBHOOK_SCHEMA,
        "delivery_id": delivery_id,
        "test": alert.test,
        "kind": alert.kind,
        "title": alert.title,
        "text": alert.text,
        "link": alert.link,
        "occurred_at": alert.occurred_at.isoformat(),
        "rule": {"id": str(alert.rule_id), "name": alert.rule_name},
        "project": {"id": str(alert.project_id), "name": alert.project_name},
        "workflow": None
        if alert.workflow_id is None
        else {"id": str(alert.workflow_id), "name": alert.workflow_name},
        "execution": None
        if alert.execution_id is None
        else {
            "id": str(alert.execution_id),
            "temporal_workflow_id": alert.temporal_workflow_id,
            "status": alert.status,
        },
        "facts": alert.facts,
    }


def _mrkdwn(text: str) -> str:
    """Slack's escaping: the three control characters of its markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(alert: Alert) -> dict[str, Any]:
    """Slack's incoming-webhook payload: ``text`` (the notification and fallback) plus
    ``blocks`` (a section with the title, text and a link to the execution, and a context
    line naming the rule)."""
    title = ("[test] " if alert.test else "") + alert.title
    link = f"\n<{alert.link}|Open in wfmon>" if alert.link else ""
    facts = "\n".join(f"*{_mrkdwn(k)}:* {_mrkdwn(str(v))}" for k, v in alert.facts.items())
    section = f"*{_mrkdwn(title)}*\n{_mrkdwn(alert.text)}" + (f"\n{facts}" if facts else "") + link
    return {
        "text": f"{title}: {alert.text}" + (f" {alert.link}" if alert.link else ""),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section[:3000]}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": _mrkdwn(
                            f"wfmon · rule {alert.rule_name} · project {alert.project_name}"
                        ),
                    }
                ],
            },
        ],
    }


def email_message(alert: Alert, sender: str, recipients: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = ("[wfmon test] " if alert.test else "[wfmon] ") + alert.title
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    lines = [alert.title, "", alert.text, ""]
    lines += [f"{k}: {v}" for k, v in alert.facts.items()]
    if alert.link:
        lines += ["", f"Open in wfmon: {alert.link}"]
    lines += ["", f"Rule {alert.rule_name!r} of project {alert.project_name!r}."]
    msg.set_content("\n".join(lines))
    return msg


# -- sending -----------------------------------------------------------------------------------


def send(
    target: ChannelTarget,
    alert: Alert,
    delivery_id: str,
    policy: NetworkPolicy,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Deliver ``alert``; raises :class:`ChannelError` (scrubbed reason) when it failed."""
    try:
        if target.type is ChannelType.WEBHOOK:
            body = json.dumps(webhook_body(alert, delivery_id)).encode()
            ts = str(int(time.time()))
            headers = {
                TIMESTAMP_HEADER: ts,
                DELIVERY_HEADER: delivery_id,
                SIGNATURE_HEADER: signature(target.secret["signing_secret"], ts, body),
            }
            _post_json(target.secret["url"], body, headers, policy, timeout, "webhook")
        elif target.type is ChannelType.SLACK:
            body = json.dumps(slack_body(alert)).encode()
            _post_json(target.secret["url"], body, {}, policy, timeout, "Slack webhook")
        else:
            _send_email(target, alert, policy, timeout)
    except ChannelError as exc:
        raise ChannelError(scrub(str(exc), target.secrets())) from None
    except Exception as exc:  # any failure becomes a scrubbed reason, never the raw text
        raise ChannelError(scrub(_describe(exc), target.secrets())) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, HostNotAllowed):
        return str(exc).replace("connection's", "channel's")
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
        )
        return f"SMTP error {exc.smtp_code}: {text}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the SMTP server closed the connection"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # e.g. no AUTH offered before STARTTLS: smtplib's text names the missing extension.
        return f"the SMTP server does not offer what was needed ({exc}); check the security setting"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "the SMTP server refused every recipient"
    if isinstance(exc, OSError):
        return f"network error ({exc.strerror or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def _resolve(host: str, port: int, policy: NetworkPolicy, timeout: float) -> str:
    return asyncio.run(policy.resolve(host, port, timeout))


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address checked beforehand, with SNI and certificate checks for the
    URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _post_json(
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: NetworkPolicy,
    timeout: float,
    what: str,
) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = _resolve(host, port, policy, timeout)
    conn: http.client.HTTPConnection = (
        _PinnedHTTPSConnection(host, port, address, timeout)
        if https
        else http.client.HTTPConnection(address, port, timeout=timeout)
    )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    netloc_host = f"[{host}]" if ":" in host else host
    try:
        conn.request(
            "POST",
            target,
            body=body,
            headers={
                "Host": netloc_host if parts.port is None else f"{netloc_host}:{port}",
                "Content-Type": "application/json",
                "User-Agent": "wfmon-alerts/1",
                **headers,
            },
        )
        resp = conn.getresponse()
        resp.read(65536)
        status = resp.status
    finally:
        conn.close()
    if not 200 <= status < 300:
        extra = " (redirects are not followed)" if 300 <= status < 400 else ""
        raise ChannelError(f"the {what} answered HTTP {status}{extra}")


def _send_email(target: ChannelTarget, alert: Alert, policy: NetworkPolicy, timeout: float) -> None:
    cfg = target.config
    host, port = str(cfg["host"]), int(cfg["port"])
    address = _resolve(host, port, policy, timeout)
    recipients = [str(r) for r in cfg["recipients"]]
    msg = email_message(alert, str(cfg["sender"]), recipients)
    smtp: smtplib.SMTP
    if cfg.get("security") == "tls":
        smtp = smtplib.SMTP_SSL(timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(timeout=timeout)
    # Connect to the checked address; certificates are checked against the host name.
    smtp._host = host  # type: ignore[attr-defined]
    try:
        if isinstance(smtp, smtplib.SMTP_SSL):
            smtp.sock = smtp._get_socket(address, port, timeout)  # type: ignore[attr-defined]
            smtp.file = None
            code, banner = smtp.getreply()
            if code != 220:
                raise smtplib.SMTPConnectError(code, banner)
        else:
            smtp.connect(address, port)
            smtp._host = host  # type: ignore[attr-defined]
            if cfg.get("security", "starttls") == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        password = target.secret.get("password")
        if cfg.get("username"):
            smtp.login(str(cfg["username"]), password or "")
        smtp.send_message(msg, from_addr=str(cfg["sender"]), to_addrs=recipients)
    finally:
        try:
            smtp.quit()
        except Exception:
            smtp.close()
