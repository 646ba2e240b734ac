"""The components that use project connections or run user code, as Temporal activities:
``postgresql-query``, ``redis-command``, ``typescript-processor`` and ``cache-aside``.

The worker adds them to the builder's registry::

    components = register_components(registry, ConnectionResolver(db, Keyring.from_settings()))
    worker = build_worker(client, registry=registry)
    ...
    await components.aclose()  # pools and clients

Nodes carry only a ``connection_id``; the URL is resolved and decrypted on the worker and
never enters a Temporal payload, an output or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass

from wfmon.components.cache_aside import CacheAside
from wfmon.components.postgres_query import PostgresPools, PostgresQuery
from wfmon.components.redis_command import RedisClients, RedisCommand
from wfmon.components.sandbox import DenoSandbox, SandboxError, SandboxLimits
from wfmon.components.specs import SPECS, ComponentSpec
from wfmon.components.typescript_processor import TypeScriptProcessor
from wfmon.connections.policy import NetworkPolicy
from wfmon.connections.resolver import ConnectionResolver
from wfmon.runtime.components import ComponentRegistry


@dataclass
class Components:
    """What :func:`register_components` registered, and the resources to close."""

    postgres: PostgresQuery
    redis: RedisCommand
    typescript: TypeScriptProcessor
    cache_aside: CacheAside
    _pools: PostgresPools
    _clients: RedisClients

    async def aclose(self) -> None:
        """Close every pool and client (call once the worker has stopped)."""
        await self._pools.close()
        await self._clients.close()


def register_components(
    registry: ComponentRegistry,
    resolver: ConnectionResolver,
    *,
    policy: NetworkPolicy | None = None,
    sandbox: DenoSandbox | None = None,
) -> Components:
    """Register the four components on ``registry``.

    ``policy`` defaults to :meth:`NetworkPolicy.from_env` (loopback and private denied
    unless ``WFMON_CONNECTIONS_ALLOW_*`` say otherwise); ``sandbox`` to a
    :class:`DenoSandbox` under the state directory.
    """
    policy = policy if policy is not None else NetworkPolicy.from_env()
    pools = PostgresPools(policy)
    clients = RedisClients(policy)
    components = Components(
        postgres=PostgresQuery(resolver, pools),
        redis=RedisCommand(resolver, clients),
        typescript=TypeScriptProcessor(sandbox if sandbox is not None else DenoSandbox()),
        cache_aside=CacheAside(resolver, clients, registry),
        _pools=pools,
        _clients=clients,
    )
    for component in (
        components.postgres,
        components.redis,
        components.typescript,
        components.cache_aside,
    ):
        registry.register(component.run)
    return components


__all__ = [
    "SPECS",
    "ComponentSpec",
    "Components",
    "DenoSandbox",
    "SandboxError",
    "SandboxLimits",
    "register_components",
]
