"""The one way wfmon connects to Temporal (address, namespace, TLS, API key)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import TLSConfig

from wfmon.settings import Settings, resolve_endpoints


async def connect(settings: Settings, address: str | None = None) -> Client:
    """Connect to the configured Temporal (the embedded dev server when unset).

    ``address`` overrides the resolved address (tests pass their own server's).
    """
    target = address or resolve_endpoints(settings).temporal_address
    tls: bool | TLSConfig = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    elif settings.temporal_tls or settings.temporal_api_key:
        tls = True
    return await Client.connect(
        target,
        namespace=settings.temporal_namespace,
        tls=tls,
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
    )
