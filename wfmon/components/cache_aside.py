"""``cache-aside``: answer from Redis, or run the wrapped component and remember its output.

Config:

- ``key`` (required): a template of the input, e.g. ``"customer:{workflow.customer_id}"``;
- ``ttl_seconds`` (default 300, 1 .. 30 days);
- ``wrapped``: ``{"component": name, "config": {...}, "connection_id": optional}`` — any
  registered component except ``cache-aside`` itself.

The node's own ``connection_id`` is the Redis connection. Output:
``{"cache": "hit" | "miss" | "unavailable", "key": key, "value": <wrapped output>}``.

Guarantees: a Redis outage never fails the node — it falls through to the wrapped
component (``"cache": "unavailable"`` plus ``"cache_error"``, the failure type); a failure
of the wrapped component is raised unchanged, so the node's retry policy applies; a cached
value that is not valid JSON counts as a miss. Values are stored as JSON with ``SET .. EX``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from wfmon.components.common import config_error, render_template
from wfmon.components.postgres_query import resolve_for
from wfmon.components.redis_command import RedisClients, execute
from wfmon.connections.resolver import ConnectionResolver
from wfmon.connections.urls import ConnectionType
from wfmon.runtime.messages import NodeInput

NAME = "cache-aside"
MAX_TTL = 30 * 24 * 3600


class CacheAside:
    """The ``cache-aside`` activity; ``components`` is the worker's registry (looked up at
    run time, so it can wrap components registered after it)."""

    def __init__(
        self,
        resolver: ConnectionResolver,
        clients: RedisClients,
        components: Mapping[str, Any],
    ) -> None:
        self._resolver = resolver
        self._clients = clients
        self._components = components

    @activity.defn(name=NAME)
    async def run(self, node: NodeInput) -> dict[str, Any]:
        """Look up the key; on a miss run the wrapped component and store its output."""
        template = node.config.get("key")
        if not isinstance(template, str) or not template:
            raise config_error(
                node, "config.key is required (a template such as 'user:{workflow.id}')"
            )
        ttl = node.config.get("ttl_seconds", 300)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL:
            raise config_error(node, f"ttl_seconds must be an integer from 1 to {MAX_TTL}")
        wrapped = node.config.get("wrapped")
        if not isinstance(wrapped, dict) or not isinstance(wrapped.get("component"), str):
            raise config_error(node, "config.wrapped must be {'component': name, 'config': {...}}")
        name = wrapped["component"]
        if name == NAME:
            raise config_error(node, "cache-aside cannot wrap cache-aside")
        fn = self._components.get(name)
        if fn is None:
            raise config_error(node, f"wrapped component {name!r} is not registered on this worker")
        key = render_template(node.document(), template)

        cache_error: str | None = None
        try:
            conn = await resolve_for(self._resolver, node, ConnectionType.REDIS)
            cached = await execute(self._clients, conn, "GET", [key.encode()])
        except ApplicationError as exc:
            if exc.type in ("InvalidConfig", "ConnectionNotFound"):
                raise  # a wrong definition, not an outage
            cache_error, conn, cached = exc.type or "RedisError", None, None
        if cached is not None:
            try:
                return {"cache": "hit", "key": key, "value": json.loads(cached)}
            except ValueError:
                pass  # not ours or corrupt: recompute and overwrite

        inner = NodeInput(
            node_id=node.node_id,
            component=name,
            config=dict(wrapped.get("config") or {}),
            workflow_input=node.workflow_input,
            upstream=node.upstream,
            connection_id=wrapped.get("connection_id"),
        )
        for attr in ("project_id",):  # forward fields newer runtimes add
            if hasattr(node, attr):
                setattr(inner, attr, getattr(node, attr))
        result = fn(inner)
        value = await result if inspect.isawaitable(result) else result

        if conn is not None:
            try:
                encoded = json.dumps(value, separators=(",", ":")).encode()
                await execute(
                    self._clients, conn, "SET", [key.encode(), encoded, b"EX", str(ttl).encode()]
                )
            except ApplicationError as exc:
                cache_error = exc.type or "RedisError"
            except (TypeError, ValueError):
                cache_error = "NotCacheable"  # the output is not JSON: returned, not stored
        out: dict[str, Any] = {
            "cache": "miss" if cache_error is None else "unavailable",
            "key": key,
            "value": value,
        }
        if cache_error is not None:
            out["cache_error"] = cache_error
        return out
