"""``postgresql-query``: run one parameterised statement on a project's PostgreSQL.

Config (``NodeInput.config``):

- ``sql`` (required): one statement, with ``$1..$n`` and ``params`` a list, or ``:name``
  and ``params`` an object. Each parameter is a literal or ``{"path": "workflow.x"}`` /
  ``{"template": "..."}`` / ``{"value": ...}`` (see :func:`~wfmon.components.common.value_of`).
  Objects and lists are sent as ``jsonb``.
- ``read_only`` (default false): run in a READ ONLY transaction.
- ``statement_timeout_ms``: capped by the connection's own ``statement_timeout_ms``.
- ``max_rows`` (default 1000, at most 10000) and ``max_bytes`` (default 1 MB): the output
  stops there and says ``"truncated": true``.

Output: ``{"columns": [...], "rows": [{column: value}], "row_count": n, "truncated": bool}``
with JSON-safe values. Guarantees: values are never interpolated into the SQL (server-side
parameters); one transaction per run; a pool per connection per worker.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import psycopg.errors
from psycopg import AsyncRawCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from temporalio import activity

from wfmon.components.common import (
    config_error,
    json_safe,
    permanent,
    project_id_of,
    raise_failure,
    require_connection,
    transient,
    value_of,
)
from wfmon.components.sql_params import SqlParamError, positional_count, to_positional
from wfmon.connections.clients import classify_failure, postgres_connect_kwargs
from wfmon.connections.errors import ConnectionNotFound, HostNotAllowed, KeyringError
from wfmon.connections.policy import NetworkPolicy
from wfmon.connections.resolver import ConnectionResolver, ResolvedConnection
from wfmon.connections.urls import ConnectionType
from wfmon.runtime.messages import NodeInput

DEFAULT_MAX_ROWS = 1000
MAX_ROWS_LIMIT = 10_000
DEFAULT_MAX_BYTES = 1_000_000


async def resolve_for(
    resolver: ConnectionResolver, node: NodeInput, expected: ConnectionType
) -> ResolvedConnection:
    """The node's connection, checked to be of the ``expected`` type and in the project."""
    connection_id = require_connection(node)
    project = await project_id_of(node)
    try:
        resolved = await resolver.resolve_connection(project, connection_id)
    except ConnectionNotFound as exc:
        raise permanent("ConnectionNotFound", str(exc)) from None
    except KeyringError as exc:
        raise permanent("ConnectionDecryptFailed", str(exc)) from None
    if resolved.connection_type is not expected:
        raise config_error(
            node, f"connection {resolved.name!r} is {resolved.connection_type}, not {expected}"
        )
    return resolved


class PostgresPools:
    """One ``AsyncConnectionPool`` per (connection id, row version), created on first use."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy
        self._pools: dict[str, tuple[str, AsyncConnectionPool[Any]]] = {}
        self._lock = asyncio.Lock()

    async def get(self, conn: ResolvedConnection) -> AsyncConnectionPool[Any]:
        key = str(conn.id)
        async with self._lock:
            current = self._pools.get(key)
            if current is not None and current[0] == conn.version:
                return current[1]
            kwargs = await postgres_connect_kwargs(conn.url, conn.config, self._policy)
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                conn.url,
                min_size=0,
                max_size=int(conn.config.get("pool_max_size", 4)),
                kwargs={**kwargs, "cursor_factory": AsyncRawCursor},
                open=False,
                name=f"wfmon-conn-{key}",
                # Reconnect attempts stop quickly: Temporal's retry policy owns retrying.
                reconnect_timeout=float(conn.config.get("connect_timeout_s", 10)),
            )
            await pool.open(wait=False)
            self._pools[key] = (conn.version, pool)
            if current is not None:
                asyncio.get_running_loop().create_task(current[1].close())
            return pool

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        await asyncio.gather(*(p.close() for _, p in pools.values()), return_exceptions=True)


def _bind(node: NodeInput, sql: str, params: Any) -> tuple[str, list[Any]]:
    """The SQL with ``$n`` placeholders and the parameter values in order."""
    document = node.document()
    try:
        if isinstance(params, dict):
            rewritten, names = to_positional(sql)
            missing = [n for n in names if n not in params]
            if missing:
                raise config_error(node, f"sql uses :{missing[0]} but params has no {missing[0]!r}")
            values = [value_of(document, params[n]) for n in names]
            return rewritten, [_adapt(v) for v in values]
        if params is None:
            params = []
        if not isinstance(params, list):
            raise config_error(node, "params must be a list (for $1..$n) or an object (:name)")
        needed = positional_count(sql)
        if needed != len(params):
            raise config_error(
                node, f"sql uses {needed} positional parameter(s) but params has {len(params)}"
            )
        return sql, [_adapt(value_of(document, p)) for p in params]
    except SqlParamError as exc:
        raise config_error(node, f"sql: {exc}") from None


def _adapt(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict | list) else value


def _int_option(node: NodeInput, key: str, default: int, low: int, high: int) -> int:
    value = node.config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise config_error(node, f"{key} must be an integer from {low} to {high}")
    return value


async def run_query(pools: PostgresPools, conn: ResolvedConnection, node: NodeInput) -> Any:
    sql = node.config.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise config_error(node, "config.sql is required")
    text, params = _bind(node, sql, node.config.get("params"))
    read_only = bool(node.config.get("read_only", False))
    ceiling = int(conn.config.get("statement_timeout_ms", 30_000))
    timeout_ms = min(_int_option(node, "statement_timeout_ms", ceiling, 1, 600_000), ceiling)
    max_rows = _int_option(node, "max_rows", DEFAULT_MAX_ROWS, 1, MAX_ROWS_LIMIT)
    max_bytes = _int_option(node, "max_bytes", DEFAULT_MAX_BYTES, 1, 1_500_000)
    where = f"connection {conn.name!r}"
    try:
        pool = await pools.get(conn)
        wait = float(conn.config.get("connect_timeout_s", 10))
        async with pool.connection(timeout=wait) as c, c.transaction():
            cur = AsyncRawCursor(c, row_factory=dict_row)
            if read_only:
                await cur.execute("SET TRANSACTION READ ONLY")
            await cur.execute("SELECT set_config('statement_timeout', $1, true)", [str(timeout_ms)])
            await cur.execute(text, params)
            if cur.description is None:
                return {
                    "columns": [],
                    "rows": [],
                    "row_count": cur.rowcount,
                    "truncated": False,
                }
            columns = [d.name for d in cur.description]
            rows: list[dict[str, Any]] = []
            size = 0
            truncated = False
            for row in await cur.fetchmany(max_rows + 1):
                safe = json_safe(row)
                size += len(json.dumps(safe, separators=(",", ":")))
                if len(rows) == max_rows or size > max_bytes:
                    truncated = True
                    break
                rows.append(safe)
            return {
                "columns": columns,
                "rows": rows,
                "row_count": len(rows),
                "truncated": truncated,
            }
    except PoolTimeout:
        raise transient(
            "ConnectionTimeout", f"{where}: no database connection became available in time"
        ) from None
    except HostNotAllowed as exc:
        raise permanent("HostNotAllowed", f"{where}: {exc}") from None
    except (psycopg.Error, OSError, TimeoutError) as exc:
        failure = classify_failure(exc)
        if isinstance(exc, psycopg.Error) and exc.sqlstate and failure.type == "SqlError":
            position = exc.diag.statement_position
            suffix = f" (at character {position} of the statement)" if position else ""
            raise permanent("SqlError", f"{failure.message}{suffix}") from None
        raise_failure(failure, where)


class PostgresQuery:
    """The ``postgresql-query`` activity bound to a resolver and its pools."""

    def __init__(self, resolver: ConnectionResolver, pools: PostgresPools) -> None:
        self._resolver = resolver
        self._pools = pools

    @activity.defn(name="postgresql-query")
    async def run(self, node: NodeInput) -> Any:
        """Run the node's SQL on its PostgreSQL connection (see module docs)."""
        conn = await resolve_for(self._resolver, node, ConnectionType.POSTGRESQL)
        return await run_query(self._pools, conn, node)
