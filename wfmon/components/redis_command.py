"""``redis-command``: one allowlisted command on a project's Redis.

Config: ``command`` (e.g. ``"SET"``) and ``args`` (a list; each a literal or
``{"path": ...}`` / ``{"template": ...}`` / ``{"base64": ...}`` for binary values). Strings
are sent as UTF-8, numbers as their decimal text, objects and lists as JSON; empty strings
are allowed.

Output: ``{"result": ...}``. Bulk strings come back as text when they are valid UTF-8 and
as ``{"base64": ...}`` otherwise (or always with ``"binary": true``), so any value
round-trips. Commands outside :data:`ALLOWED` (``CONFIG``, ``FLUSHALL``, ``EVAL``,
``KEYS``...) fail with a non-retryable ``RedisCommandNotAllowed``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import redis.asyncio
import redis.exceptions
from temporalio import activity

from wfmon.components.common import (
    config_error,
    permanent,
    raise_failure,
    value_of,
)
from wfmon.components.postgres_query import resolve_for
from wfmon.connections.clients import classify_failure, redis_client
from wfmon.connections.errors import HostNotAllowed
from wfmon.connections.policy import NetworkPolicy
from wfmon.connections.resolver import ConnectionResolver, ResolvedConnection
from wfmon.connections.urls import ConnectionType
from wfmon.runtime.messages import NodeInput

#: command -> (minimum args, maximum args or None for unbounded). Data commands only: no
#: administration, scripting, blocking, pub/sub or keyspace scans.
ALLOWED: dict[str, tuple[int, int | None]] = {
    "GET": (1, 1), "SET": (2, 7), "GETDEL": (1, 1), "MGET": (1, None), "APPEND": (2, 2),
    "STRLEN": (1, 1), "DEL": (1, None), "EXISTS": (1, None), "INCR": (1, 1),
    "INCRBY": (2, 2), "DECR": (1, 1), "DECRBY": (2, 2), "EXPIRE": (2, 3), "PEXPIRE": (2, 3),
    "TTL": (1, 1), "PTTL": (1, 1), "PERSIST": (1, 1), "TYPE": (1, 1),
    "HGET": (2, 2), "HSET": (3, None), "HDEL": (2, None), "HGETALL": (1, 1),
    "HEXISTS": (2, 2), "HINCRBY": (3, 3), "HKEYS": (1, 1), "HLEN": (1, 1), "HMGET": (2, None),
    "LPUSH": (2, None), "RPUSH": (2, None), "LPOP": (1, 2), "RPOP": (1, 2),
    "LRANGE": (3, 3), "LLEN": (1, 1), "LINDEX": (2, 2),
    "SADD": (2, None), "SREM": (2, None), "SMEMBERS": (1, 1), "SISMEMBER": (2, 2),
    "SCARD": (1, 1),
    "ZADD": (3, None), "ZRANGE": (3, 4), "ZSCORE": (2, 2), "ZREM": (2, None), "ZCARD": (1, 1),
    "PING": (0, 1),
}  # fmt: skip

_SET_FLAGS = {"NX", "XX", "KEEPTTL", "GET"}
_SET_WITH_VALUE = {"EX", "PX", "EXAT", "PXAT"}


def encode_arg(value: Any) -> bytes:
    """One argument as Redis sees it (binary-safe)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int | float):
        return str(value).encode()
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def decode_reply(value: Any, *, binary: bool = False) -> Any:
    if isinstance(value, bytes):
        if not binary:
            try:
                return value.decode()
            except UnicodeDecodeError:
                pass
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {
            (k.decode(errors="replace") if isinstance(k, bytes) else str(k)): decode_reply(
                v, binary=binary
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [decode_reply(v, binary=binary) for v in value]
    if isinstance(value, float) and value != value:  # NaN
        return str(value)
    return value


def check_command(node: NodeInput, command: Any, args: list[Any]) -> str:
    if not isinstance(command, str) or not command.strip():
        raise config_error(node, 'config.command is required (e.g. "GET")')
    name = command.strip().upper()
    if name not in ALLOWED:
        raise permanent(
            "RedisCommandNotAllowed",
            f"redis command {name!r} is not allowed (allowed: {', '.join(sorted(ALLOWED))})",
        )
    low, high = ALLOWED[name]
    if len(args) < low or (high is not None and len(args) > high):
        expected = f"{low}" if low == high else f"{low}..{high if high is not None else 'n'}"
        raise config_error(node, f"{name} takes {expected} argument(s), got {len(args)}")
    if name == "SET":
        options = [str(a).upper() if isinstance(a, str) else a for a in args[2:]]
        i = 0
        while i < len(options):
            if options[i] in _SET_FLAGS:
                i += 1
            elif options[i] in _SET_WITH_VALUE and i + 1 < len(options):
                i += 2
            else:
                raise config_error(node, f"SET option {options[i]!r} is not supported")
    return name


class RedisClients:
    """One client (with its own connection pool) per (connection id, row version)."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy
        self._clients: dict[str, tuple[str, redis.asyncio.Redis]] = {}
        self._lock = asyncio.Lock()

    async def get(self, conn: ResolvedConnection) -> redis.asyncio.Redis:
        key = str(conn.id)
        async with self._lock:
            current = self._clients.get(key)
            if current is not None and current[0] == conn.version:
                return current[1]
            client = await redis_client(conn.url, conn.config, self._policy)
            self._clients[key] = (conn.version, client)
            if current is not None:
                asyncio.get_running_loop().create_task(current[1].aclose())
            return client

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        await asyncio.gather(*(c.aclose() for _, c in clients.values()), return_exceptions=True)


async def execute(
    clients: RedisClients, conn: ResolvedConnection, command: str, args: list[bytes]
) -> Any:
    """Run one command; failures raise ``ApplicationError`` (sanitized, typed)."""
    where = f"connection {conn.name!r}"
    try:
        client = await clients.get(conn)
        return await client.execute_command(command, *args)  # type: ignore[no-untyped-call]
    except HostNotAllowed as exc:
        raise permanent("HostNotAllowed", f"{where}: {exc}") from None
    except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
        raise_failure(classify_failure(exc), where)


class RedisCommand:
    """The ``redis-command`` activity bound to a resolver and its clients."""

    def __init__(self, resolver: ConnectionResolver, clients: RedisClients) -> None:
        self._resolver = resolver
        self._clients = clients

    @activity.defn(name="redis-command")
    async def run(self, node: NodeInput) -> dict[str, Any]:
        """Run the node's command on its Redis connection (see module docs)."""
        raw_args = node.config.get("args", [])
        if not isinstance(raw_args, list):
            raise config_error(node, "config.args must be a list")
        command = check_command(node, node.config.get("command"), raw_args)
        document = node.document()
        args = [encode_arg(value_of(document, a)) for a in raw_args]
        conn = await resolve_for(self._resolver, node, ConnectionType.REDIS)
        reply = await execute(self._clients, conn, command, args)
        return {"result": decode_reply(reply, binary=bool(node.config.get("binary", False)))}
