"""Request dependencies: the app's services, the caller's identity, the unit of work.

- :func:`current_user` verifies the bearer token (``Authorization: Bearer ...``, or the
  ``wfmon_token`` cookie the sign-in page sets) and yields the caller's ``auth_user_id``;
  anything else is a 401.
- :func:`user_conn` is one database transaction under the caller's row-level security
  (``Database.as_user``). It ends BEFORE the response is sent (``scope="function"``), so a
  client that sees a 2xx can read its own write at once; an exception rolls it back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from temporalio.client import Client

from wfmon.api.errors import ServiceUnavailable, Unauthorized
from wfmon.api.jwt import TokenError, decode_hs256
from wfmon.connections.crypto import Keyring
from wfmon.connections.errors import KeyringError
from wfmon.connections.policy import NetworkPolicy
from wfmon.db import Database, DbConnection
from wfmon.settings import Settings

TOKEN_COOKIE = "wfmon_token"


class TemporalProvider:
    """Connects to Temporal on first use (on the server's event loop) and keeps the client.

    Pages and reads that need no sync work even while Temporal is down: after a failed
    connection attempt, callers are told at once (no new attempt) for ``retry_after``
    seconds, so an outage costs one ``timeout`` per window, not one per request.
    """

    def __init__(
        self,
        settings: Settings,
        address: str | None = None,
        *,
        timeout: float = 5.0,
        retry_after: float = 15.0,
    ) -> None:
        self._settings = settings
        self._address = address
        self._timeout = timeout
        self._retry_after = retry_after
        self._client: Client | None = None
        self._lock: asyncio.Lock | None = None
        self._down_until = 0.0
        self._down_reason = ""

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                if time.monotonic() < self._down_until:
                    raise ServiceUnavailable(self._down_reason)
                from wfmon.temporal_client import connect

                try:
                    self._client = await asyncio.wait_for(
                        connect(self._settings, self._address), self._timeout
                    )
                except Exception as exc:
                    self._down_reason = f"Temporal is not reachable ({type(exc).__name__})"
                    self._down_until = time.monotonic() + self._retry_after
                    raise ServiceUnavailable(self._down_reason) from None
        return self._client


@dataclass
class ApiContext:
    """Everything a request handler may use; one per app."""

    settings: Settings
    db: Database
    jwt_secret: str
    temporal: TemporalProvider
    policy: NetworkPolicy
    keyring: Keyring | None = None
    keyring_error: str | None = None
    #: How long a read waits for an immediate sync before answering from the cache.
    sync_timeout: float = 15.0
    owns_db: bool = field(default=False, repr=False)

    def require_keyring(self) -> Keyring:
        if self.keyring is None:
            raise KeyringError(self.keyring_error or "WFMON_SECRET_KEY is not set")
        return self.keyring


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.wfmon
    return ctx


Context = Annotated[ApiContext, Depends(get_context)]


@dataclass(frozen=True)
class AuthUser:
    """The verified caller: ``auth_user_id`` is the token's ``sub``."""

    auth_user_id: UUID
    email: str | None = None


def token_from(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        return value.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


def authenticate(token: str | None, secret: str) -> AuthUser:
    """The caller a token names; :class:`Unauthorized` when absent or not verifying."""
    if not token:
        raise Unauthorized("sign in: send 'Authorization: Bearer <token>'")
    try:
        claims = decode_hs256(token, secret)
        auth_user_id = UUID(str(claims["sub"]))
    except TokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    except ValueError:
        raise Unauthorized("invalid token: sub is not a user id (UUID)") from None
    email = claims.get("email")
    return AuthUser(auth_user_id, email if isinstance(email, str) else None)


#: Header the pages' JavaScript sends with every cookie-authenticated write. A cross-site
#: form cannot set it (and a cross-site fetch that sets it needs a CORS preflight wfmon
#: never grants), so a cookie alone never authorises a write (CSRF).
CSRF_HEADER = "x-wfmon-request"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def current_user(request: Request, ctx: Context) -> AuthUser:
    from_header = "authorization" in request.headers
    user = authenticate(token_from(request), ctx.jwt_secret)
    if (
        not from_header
        and request.method not in _SAFE_METHODS
        and CSRF_HEADER not in request.headers
    ):
        raise Unauthorized(f"a write signed in by cookie must send the {CSRF_HEADER} header")
    return user


CurrentUser = Annotated[AuthUser, Depends(current_user)]


def user_conn(user: CurrentUser, ctx: Context) -> Iterator[DbConnection]:
    with ctx.db.as_user(user.auth_user_id) as conn:
        yield conn


UserConn = Annotated[DbConnection, Depends(user_conn, scope="function")]
