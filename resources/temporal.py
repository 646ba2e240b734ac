"""Temporal as a Dagster resource: a thin wrapper over :func:`wfmon.temporal_client.connect`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
from pydantic import Field
from temporalio.client import Client

from wfmon.settings import Settings, load_settings
from wfmon.temporal_client import connect

T = TypeVar("T")


class TemporalResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where Temporal answers. Every field left unset falls back to the ``WFMON_*``
    settings (and, for the address, to the embedded dev server of ``wfmon services up``).

    Guarantees: each call to :meth:`run` connects a fresh client on its own event loop and
    closes nothing it did not open, so the resource is safe in sensors, schedules and
    steps alike (Dagster code is synchronous; Temporal's client is async).
    """

    address: str | None = Field(default=None, description="host:port of the Temporal frontend.")
    namespace: str | None = Field(default=None, description="Temporal namespace.")
    tls: bool | None = Field(default=None, description="Use TLS (implied by an API key).")
    tls_cert_path: str | None = Field(default=None, description="mTLS client certificate file.")
    tls_key_path: str | None = Field(default=None, description="mTLS client private key file.")
    api_key: str | None = Field(default=None, description="Temporal Cloud API key.")

    def settings(self) -> Settings:
        """The wfmon settings with this resource's fields applied on top."""
        base = load_settings()
        updates: dict[str, object] = {}
        if self.namespace:
            updates["temporal_namespace"] = self.namespace
        if self.tls is not None:
            updates["temporal_tls"] = self.tls
        if self.tls_cert_path:
            updates["temporal_tls_cert"] = Path(self.tls_cert_path)
        if self.tls_key_path:
            updates["temporal_tls_key"] = Path(self.tls_key_path)
        if self.api_key:
            from pydantic import SecretStr

            updates["temporal_api_key"] = SecretStr(self.api_key)
        return base.model_copy(update=updates)

    def resolved_namespace(self) -> str:
        """The namespace this resource connects to."""
        return self.namespace or load_settings().temporal_namespace

    async def connect(self) -> Client:
        """A connected client (call inside a running event loop)."""
        return await connect(self.settings(), address=self.address or None)

    def run(self, fn: Callable[[Client], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Connect, run ``fn(client)`` to completion on a new event loop, return its result.

        Raises :class:`TimeoutError` when ``timeout`` seconds pass first.
        """

        async def main() -> T:
            client = await self.connect()
            return await asyncio.wait_for(fn(client), timeout)

        return asyncio.run(main())
