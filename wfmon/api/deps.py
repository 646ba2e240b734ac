"""Request dependencies: the app's services, the caller's identity, the unit of work.

The JSON API and the web pages use the same ones:

- :func:`current_user` verifies the bearer token (``Authorization: Bearer ...``, or the
  ``wfmon_token`` cookie the sign-in page sets) and yields the caller's ``auth_user_id``;
  anything else is a 401. Both ways are declared as OpenAPI security schemes
  (``bearer`` and ``cookie``), so ``/api/docs`` shows them.
- :func:`user_conn` is one database transaction under the caller's row-level security
  (``Database.as_user``). It ends BEFORE the response is sent (``scope="function"``), so a
  client that sees a 2xx can read its own write at once; an exception rolls it back.
- :func:`user_work` is for handlers that must await something first (a cache-aside
  sync): it opens that same kind of transaction later, on a worker thread.

FastAPI runs a plain ``def`` dependency on a worker thread (one thread hop each, per
request); the ones that do no blocking I/O are ``async def`` so they run on the event
loop. Only :func:`user_conn` blocks (the pool, the database) and runs on a thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from wfmon.api.errors import ServiceUnavailable, Unauthorized
from wfmon.api.jwt import TokenError, decode_hs256
from wfmon.connections.crypto import Keyring
from wfmon.connections.errors import KeyringError
from wfmon.connections.policy import NetworkPolicy
from wfmon.db import Database, DbConnection
from wfmon.settings import Settings

TOKEN_COOKIE = "wfmon_token"

T = TypeVar("T")


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


async def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.wfmon
    return ctx


Context = Annotated[ApiContext, Depends(get_context)]


@dataclass(frozen=True)
class AuthUser:
    """The verified caller: ``auth_user_id`` is the token's ``sub``."""

    auth_user_id: UUID
    email: str | None = None


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


#: ``Authorization: Bearer <token>``. ``auto_error=False``: a missing or malformed header
#: is judged by :func:`current_user` (same 401 body as every other error), not by FastAPI.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An HS256 JWT whose `sub` is your auth user id (`wfmon token --user EMAIL`).",
    auto_error=False,
)
#: The HttpOnly cookie the sign-in page sets (the web pages send it).
cookie_scheme = APIKeyCookie(
    name=TOKEN_COOKIE,
    scheme_name="cookie",
    description="The same token, in the cookie `/signin` sets. Writes signed in by cookie "
    "must also send the `X-Wfmon-Request` header.",
    auto_error=False,
)


async def current_user(
    request: Request,
    ctx: Context,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    cookie: Annotated[str | None, Security(cookie_scheme)],
) -> AuthUser:
    """The caller: the bearer token when an ``Authorization`` header is sent (it must be
    ``Bearer <token>``), else the sign-in cookie; 401 when neither verifies. Verifying
    an HS256 token is microseconds of CPU, so it runs on the event loop."""
    from_header = "authorization" in request.headers
    if request.headers.get("authorization"):
        if bearer is None:
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        token: str | None = bearer.credentials
    else:
        token = cookie or None
    user = authenticate(token, ctx.jwt_secret)
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


@dataclass(frozen=True)
class UserWork:
    """Units of work under the caller's row-level security, opened when the handler asks
    (after an ``await``), each one transaction like :data:`UserConn`."""

    db: Database
    user: AuthUser

    async def run(self, work: Callable[[DbConnection], T]) -> T:
        """``work(conn)`` in one transaction as the caller, on a worker thread."""

        def in_transaction() -> T:
            with self.db.as_user(self.user.auth_user_id) as conn:
                return work(conn)

        return await run_in_threadpool(in_transaction)


async def user_work(user: CurrentUser, ctx: Context) -> UserWork:
    return UserWork(ctx.db, user)


CurrentUserWork = Annotated[UserWork, Depends(user_work)]
