"""Which network addresses connections may reach.

A connection's host is resolved and EVERY address it resolves to is checked before wfmon
connects (the connectivity test and the components alike), so neither can be used to
probe internal networks. Defaults deny loopback and private ranges; deployments whose
databases live on a private network allow them explicitly:

- ``WFMON_CONNECTIONS_ALLOW_PRIVATE=true``: RFC 1918, unique-local IPv6, CGNAT
- ``WFMON_CONNECTIONS_ALLOW_LOOPBACK=true``: 127.0.0.0/8, ::1 (development, tests, demo)

Link-local (cloud metadata at 169.254.169.254), multicast, unspecified and reserved
addresses are always denied.

The checked address is the one connected to (``hostaddr`` for PostgreSQL, the IP for
Redis), so a DNS answer that changes between check and connect cannot slip past.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from enum import StrEnum

from pydantic_settings import BaseSettings, SettingsConfigDict

from wfmon.connections.errors import HostNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressClass(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    LOOPBACK = "loopback"
    FORBIDDEN = "forbidden"


def classify(address: IPAddress) -> AddressClass:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return classify(address.ipv4_mapped)
    if address.is_loopback:
        return AddressClass.LOOPBACK
    if (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    ):
        return AddressClass.FORBIDDEN
    if address.is_private or address in _CGNAT:
        return AddressClass.PRIVATE
    if not address.is_global:
        return AddressClass.FORBIDDEN
    return AddressClass.PUBLIC


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class _PolicySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WFMON_CONNECTIONS_", extra="ignore")

    allow_private: bool = False
    allow_loopback: bool = False


@dataclass(frozen=True)
class NetworkPolicy:
    """Allow/deny for connection targets. Public addresses are always allowed."""

    allow_private: bool = False
    allow_loopback: bool = False

    @classmethod
    def from_env(cls) -> NetworkPolicy:
        """``WFMON_CONNECTIONS_ALLOW_PRIVATE`` / ``WFMON_CONNECTIONS_ALLOW_LOOPBACK``."""
        s = _PolicySettings()
        return cls(allow_private=s.allow_private, allow_loopback=s.allow_loopback)

    @classmethod
    def permissive_local(cls) -> NetworkPolicy:
        """Loopback and private allowed: embedded services, tests and the demo."""
        return cls(allow_private=True, allow_loopback=True)

    def allows(self, address: IPAddress) -> bool:
        cls_ = classify(address)
        return (
            cls_ is AddressClass.PUBLIC
            or (cls_ is AddressClass.PRIVATE and self.allow_private)
            or (cls_ is AddressClass.LOOPBACK and self.allow_loopback)
        )

    def check_literal(self, host: str) -> None:
        """Reject a host that is a denied IP literal or ``localhost`` (no DNS lookup)."""
        if host.lower() in ("localhost", "localhost.") and not self.allow_loopback:
            raise HostNotAllowed(_denied_message(AddressClass.LOOPBACK))
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        if not self.allows(address):
            raise HostNotAllowed(_denied_message(classify(address)))

    async def resolve(self, host: str, port: int, timeout: float = 5.0) -> str:
        """Resolve ``host`` and return one allowed address to connect to.

        Raises :class:`HostNotAllowed` if ANY address is denied (so an attacker cannot mix
        a public and a private answer) or the name does not resolve.
        """
        self.check_literal(host)
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError):
            raise HostNotAllowed("the connection's host name does not resolve") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise HostNotAllowed("the connection's host name does not resolve")
        for address in addresses:
            if not self.allows(address):
                raise HostNotAllowed(_denied_message(classify(address)))
        return str(addresses[0])


def _denied_message(cls_: AddressClass) -> str:
    if cls_ is AddressClass.LOOPBACK:
        return (
            "the connection's host is a loopback address, which the network policy denies "
            "(set WFMON_CONNECTIONS_ALLOW_LOOPBACK=true to allow it)"
        )
    if cls_ is AddressClass.PRIVATE:
        return (
            "the connection's host is a private-network address, which the network policy "
            "denies (set WFMON_CONNECTIONS_ALLOW_PRIVATE=true to allow it)"
        )
    return "the connection's host is a link-local, multicast or reserved address (always denied)"
