"""Open clients for a decrypted connection, and describe their failures safely.

Shared by the connectivity test and the components. :func:`classify_failure` turns any
client exception into a fixed, sanitized message: driver messages often embed the host,
user or (for some drivers) the whole conninfo, so they are never passed through, except
a PostgreSQL server's own error text for SQL errors, which never contains credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import psycopg.errors
import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from wfmon.connections.errors import HostNotAllowed
from wfmon.connections.policy import NetworkPolicy
from wfmon.connections.urls import ConnectionType, host_port


@dataclass(frozen=True)
class Failure:
    """A sanitized failure: a stable ``type``, a message safe to show, whether a retry can
    help."""

    type: str
    message: str
    retryable: bool


async def postgres_connect_kwargs(
    url: str, options: dict[str, Any], policy: NetworkPolicy
) -> dict[str, Any]:
    """Keyword arguments for :func:`psycopg.AsyncConnection.connect` (besides the URL):
    ``hostaddr`` pinned to the address the policy checked."""
    host, port = host_port(ConnectionType.POSTGRESQL, url)
    address = await policy.resolve(host, port)
    return {
        "hostaddr": address,
        "connect_timeout": max(2, round(float(options.get("connect_timeout_s", 10)))),
    }


async def redis_client(
    url: str, options: dict[str, Any], policy: NetworkPolicy, *, max_connections: int | None = None
) -> redis.asyncio.Redis:
    """A binary-safe client (``decode_responses=False``) without redis-py's own retries:
    Temporal's retry policy is the one that decides."""
    parts = urlsplit(url)
    host, port = host_port(ConnectionType.REDIS, url)
    address = await policy.resolve(host, port)
    tls = parts.scheme == "rediss"
    db = unquote(parts.path).removeprefix("/") or "0"
    return redis.asyncio.Redis(
        # TLS keeps the name so certificate checks work; plain TCP uses the checked address.
        host=host if tls else address,
        port=port,
        db=int(db),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=tls,
        socket_timeout=float(options.get("socket_timeout_s", 5.0)),
        socket_connect_timeout=float(options.get("connect_timeout_s", 5.0)),
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
        max_connections=max_connections or int(options.get("pool_max_size", 8)),
    )


_AUTH_FAILED = "authentication failed (check user and password)"

# SQLSTATE classes a retry can fix: connection exceptions, insufficient resources,
# operator intervention (shutdown), transaction rollback (serialization, deadlock).
_RETRYABLE_SQLSTATE_CLASSES = ("08", "53", "57P", "40")


def classify_failure(exc: BaseException) -> Failure:
    """Map a psycopg / redis / network exception to a sanitized :class:`Failure`."""
    if isinstance(exc, HostNotAllowed):
        return Failure("HostNotAllowed", str(exc), retryable=False)
    if isinstance(exc, TimeoutError):
        return Failure("ConnectionTimeout", "timed out connecting or waiting for a reply", True)
    if isinstance(exc, psycopg.Error):
        return _classify_psycopg(exc)
    if isinstance(exc, redis.exceptions.RedisError):
        return _classify_redis(exc)
    if isinstance(exc, ConnectionRefusedError):
        return Failure("ConnectionRefused", "the server refused the connection", True)
    if isinstance(exc, OSError):
        return Failure("ConnectionFailed", "could not reach the server (network error)", True)
    return Failure("ConnectionFailed", f"unexpected {type(exc).__name__}", True)


def _classify_psycopg(exc: psycopg.Error) -> Failure:
    state = exc.sqlstate or ""
    if state == "57014":
        return Failure("SqlTimeout", "the statement was cancelled by the statement timeout", True)
    if state.startswith("28"):
        return Failure("AuthenticationFailed", _AUTH_FAILED, False)
    if state == "3D000":
        return Failure("DatabaseNotFound", "the connection's database does not exist", False)
    if state == "42501":
        return Failure("SqlError", f"permission denied: {_primary(exc)}", False)
    if state.startswith(_RETRYABLE_SQLSTATE_CLASSES):
        return Failure("DatabaseUnavailable", f"database unavailable ({state})", True)
    if state:
        return Failure("SqlError", _primary(exc), False)
    if isinstance(exc, psycopg.OperationalError):
        # No SQLSTATE: the client never got a server reply. libpq's text names the host
        # and user, so only its kind is kept.
        text = str(exc).lower()
        if "refused" in text:
            return Failure("ConnectionRefused", "the server refused the connection", True)
        if "timeout" in text or "timed out" in text:
            return Failure("ConnectionTimeout", "timed out connecting to the server", True)
        if "password" in text or "authentication" in text:
            return Failure("AuthenticationFailed", _AUTH_FAILED, False)
        return Failure("ConnectionFailed", "could not connect to the server", True)
    return Failure("SqlError", f"{type(exc).__name__} from the database driver", False)


def _primary(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or type(exc).__name__
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    return message[:2000]


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _classify_redis(exc: redis.exceptions.RedisError) -> Failure:
    if isinstance(
        exc,
        redis.exceptions.AuthenticationError
        | redis.exceptions.AuthenticationWrongNumberOfArgsError,
    ):
        return Failure("AuthenticationFailed", _AUTH_FAILED, False)
    if isinstance(exc, redis.exceptions.TimeoutError):
        return Failure("ConnectionTimeout", "timed out waiting for Redis", True)
    if isinstance(exc, redis.exceptions.ConnectionError):
        if _caused_by(exc, ConnectionRefusedError):
            return Failure("ConnectionRefused", "the server refused the connection", True)
        if _caused_by(exc, TimeoutError):
            return Failure("ConnectionTimeout", "timed out connecting to Redis", True)
        text = str(exc).lower()
        if "auth" in text or "password" in text or "noperm" in text:
            return Failure("AuthenticationFailed", _AUTH_FAILED, False)
        if "refused" in text:
            return Failure("ConnectionRefused", "the server refused the connection", True)
        return Failure("ConnectionFailed", "could not reach Redis", True)
    if isinstance(exc, redis.exceptions.ResponseError):
        text = str(exc)
        if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            return Failure("AuthenticationFailed", _AUTH_FAILED, False)
        if text.startswith(("LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN")):
            return Failure("RedisUnavailable", text.split(" ", 1)[0], True)
        return Failure("RedisError", text[:500], False)
    return Failure("RedisError", type(exc).__name__, True)


async def probe(
    connection_type: ConnectionType, url: str, options: dict[str, Any], policy: NetworkPolicy
) -> None:
    """Connect and run the cheapest round trip (``SELECT 1`` / ``PING``). Raises on failure."""
    if connection_type is ConnectionType.POSTGRESQL:
        kwargs = await postgres_connect_kwargs(url, options, policy)
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, **kwargs)
        try:
            await conn.execute("SELECT 1")
        finally:
            await conn.close()
    else:
        client = await redis_client(url, options, policy, max_connections=1)
        try:
            await client.ping()  # type: ignore[misc]  # redis stubs: sync|async union
        finally:
            await client.aclose()
