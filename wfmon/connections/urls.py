"""Connection types, URL validation, options and masking.

Validation errors name what is wrong ("port must be a number between 1 and 65535") and
never repeat the URL, which may hold a password. Query parameters are allowlisted: libpq
accepts ``host=``/``hostaddr=`` in the query string, which would otherwise bypass the
network policy, and file-path options (``sslrootcert``) would read files on the worker.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wfmon.connections.errors import InvalidConnection

MAX_URL_LENGTH = 2048


class ConnectionType(StrEnum):
    POSTGRESQL = "postgresql"
    REDIS = "redis"


_SCHEMES: dict[ConnectionType, tuple[str, ...]] = {
    ConnectionType.POSTGRESQL: ("postgresql", "postgres"),
    ConnectionType.REDIS: ("redis", "rediss"),
}
_DEFAULT_PORTS = {ConnectionType.POSTGRESQL: 5432, ConnectionType.REDIS: 6379}
_QUERY_ALLOWED: dict[ConnectionType, frozenset[str]] = {
    ConnectionType.POSTGRESQL: frozenset(
        {"sslmode", "connect_timeout", "application_name", "target_session_attrs"}
    ),
    ConnectionType.REDIS: frozenset(),
}
_DB_NAME = re.compile(r"^[^/\x00]{1,63}$")


class PostgresOptions(BaseModel):
    """Options of a PostgreSQL connection (``config`` column)."""

    model_config = ConfigDict(extra="forbid")

    #: Connections kept per worker for this connection.
    pool_max_size: int = Field(default=4, ge=1, le=50)
    #: Default statement timeout for queries; a node may lower it.
    statement_timeout_ms: int = Field(default=30_000, ge=1, le=600_000)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=60)


class RedisOptions(BaseModel):
    """Options of a Redis connection (``config`` column)."""

    model_config = ConfigDict(extra="forbid")

    pool_max_size: int = Field(default=8, ge=1, le=100)
    socket_timeout_s: float = Field(default=5.0, gt=0, le=60)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=60)


OPTIONS_MODEL: dict[ConnectionType, type[BaseModel]] = {
    ConnectionType.POSTGRESQL: PostgresOptions,
    ConnectionType.REDIS: RedisOptions,
}


def parse_type(value: str) -> ConnectionType:
    try:
        return ConnectionType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in ConnectionType)
        raise InvalidConnection(f"connection_type must be one of {allowed}") from None


def validate_options(connection_type: ConnectionType, config: Any) -> dict[str, Any]:
    """Options with defaults filled in; raises :class:`InvalidConnection` naming the field."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidConnection("config must be a JSON object")
    try:
        model = OPTIONS_MODEL[connection_type].model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(
            f"config.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidConnection(problems) from None
    return model.model_dump()


def validate_url(connection_type: ConnectionType, url: str) -> str:
    """Check ``url`` for ``connection_type``; return it unchanged.

    Raises :class:`InvalidConnection` with a message naming the problem and not the URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidConnection("url is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidConnection(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidConnection("url contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidConnection(f"url does not parse: {_safe_reason(exc)}") from None
    schemes = _SCHEMES[connection_type]
    if parts.scheme not in schemes:
        expected = " or ".join(f"{s}://" for s in schemes)
        got = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise InvalidConnection(f"a {connection_type} url must start with {expected} (got {got})")
    if "," in parts.netloc.rpartition("@")[2]:
        raise InvalidConnection("url must name exactly one host (multi-host urls are unsupported)")
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise InvalidConnection("port must be a number between 1 and 65535") from None
    if not host:
        raise InvalidConnection("url must name a host (unix sockets are not supported)")
    if port == 0:
        raise InvalidConnection("port must be a number between 1 and 65535")
    if parts.fragment:
        raise InvalidConnection("url must not have a #fragment")
    path = unquote(parts.path)
    if connection_type is ConnectionType.POSTGRESQL:
        database = path.removeprefix("/")
        if not database:
            raise InvalidConnection("url must name a database (postgresql://host:port/dbname)")
        if not _DB_NAME.match(database):
            raise InvalidConnection("database name must be 1-63 characters without '/'")
    else:
        db = path.removeprefix("/")
        if db and not (db.isdigit() and int(db) < 16384):
            raise InvalidConnection("redis database must be a number, as in redis://host:6379/0")
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise InvalidConnection("query string does not parse") from None
    allowed = _QUERY_ALLOWED[connection_type]
    for key, _ in query:
        if key not in allowed:
            hint = f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""
            raise InvalidConnection(f"url parameter {key!r} is not allowed{hint}")
    return url


def mask_url(connection_type: ConnectionType, url: str) -> str:
    """``scheme://host:port/database``: no user name, password or query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port or _DEFAULT_PORTS[connection_type]
    database = unquote(parts.path).removeprefix("/")
    if connection_type is ConnectionType.REDIS and not database:
        database = "0"
    return f"{parts.scheme}://{host}:{port}/{database}"


def host_port(connection_type: ConnectionType, url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or _DEFAULT_PORTS[connection_type]


def _safe_reason(exc: Exception) -> str:
    # urllib's messages describe the defect ("Invalid IPv6 URL"), not the URL itself.
    return str(exc).split(":")[0][:80]
