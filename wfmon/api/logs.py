"""The server's log never carries a credential.

Sign-in links keep the token in the URL *fragment*, which browsers never send, so no
token reaches a request line. As defence in depth, :class:`RedactSecrets` (installed on
every handler of ``wfmon serve``'s logging by :func:`log_config`) rewrites what is logged:

- query-string values whose name looks sensitive (``token``, ``code``, ``key``,
  ``secret``, ``password``, ``auth``, ``session``, ``signature`` ...) become ``[redacted]``,
  also inside a value that is itself a URL (``next=/x%3Ftoken%3D...``);
- anything shaped like a JWT (``eyJ...``.``...``.``...``) becomes ``[redacted-jwt]``
  wherever it appears in a message or traceback.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import quote, unquote_plus

REDACTED = "[redacted]"
#: Substrings of query parameter names whose values are never logged.
SENSITIVE_NAME_PARTS = (
    "token",
    "code",
    "key",
    "secret",
    "passw",
    "pwd",
    "auth",
    "session",
    "signature",
    "sig",
    "jwt",
    "credential",
    "otp",
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


def sensitive_name(name: str) -> bool:
    lowered = unquote_plus(name).lower()
    return any(part in lowered for part in SENSITIVE_NAME_PARTS)


def redact_text(text: str) -> str:
    """``text`` with every JWT-shaped string replaced."""
    return _JWT.sub("[redacted-jwt]", text)


def redact_target(target: str, _depth: int = 0) -> str:
    """A request target (``/path?query``) with sensitive query values replaced."""
    path, sep, rest = target.partition("?")
    if not sep:
        return redact_text(target)
    query, hash_sep, fragment = rest.partition("#")
    items = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if eq and sensitive_name(name):
            item = f"{name}={REDACTED}"
        elif eq and _depth < 3:
            decoded = unquote_plus(value)
            if "?" in decoded:
                inner = redact_target(decoded, _depth + 1)
                if inner != decoded:
                    item = f"{name}={quote(inner, safe='/')}"
        items.append(item)
    out = f"{path}?{'&'.join(items)}"
    if hash_sep:
        out += "#" + (REDACTED if fragment else "")
    return redact_text(out)


#: A whitespace-free word with a query string: a URL or request target in a message.
_URLISH = re.compile(r"[^\s\"'<>]*\?[^\s\"'<>]*")


def _redact_urls_in(text: str) -> str:
    if "?" not in text:
        return text
    return _URLISH.sub(lambda m: redact_target(m.group(0)), text)


class RedactSecrets(logging.Filter):
    """Rewrites a record so that no credential is written (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            # uvicorn's access record: (client_addr, method, full_path, http_version, status)
            record.args = (args[0], args[1], redact_target(str(args[2])), *args[3:])
        else:
            message = record.getMessage()
            cleaned = redact_text(_redact_urls_in(message))
            if cleaned != message:
                record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(_redact_urls_in(record.exc_text))
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`RedactSecrets` on every handler, and
    the root logger (wfmon's own loggers) writing through the same filtered handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_secrets": {"()": f"{__name__}.RedactSecrets"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_secrets"]
    config.setdefault("root", {"handlers": ["default"], "level": "WARNING"})
    return config
