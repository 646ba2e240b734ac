"""Development tokens: ``wfmon token --user EMAIL`` and the demo's sign-in links.

A token is an HS256 JWT signed with ``WFMON_JWT_SECRET`` whose ``sub`` is the user's
``auth_user_id`` — the same shape Supabase issues, so the API treats both alike.
"""

from __future__ import annotations

from uuid import UUID

from wfmon.api.jwt import dev_token
from wfmon.db import Database
from wfmon.db.accounts import find_users
from wfmon.settings import Settings, SettingsError

DEFAULT_TTL_HOURS = 24 * 7


class UnknownUser(LookupError):
    """No single wfmon user matches; the message says what to do."""


def jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret is None or not settings.jwt_secret.get_secret_value():
        raise SettingsError("WFMON_JWT_SECRET is not set: it signs and verifies API tokens")
    return settings.jwt_secret.get_secret_value()


def find_auth_user_id(db: Database, user: str) -> tuple[UUID, str]:
    """(auth_user_id, email) of the user named by email or by auth user id."""
    try:
        key: UUID | None = UUID(user)
    except ValueError:
        key = None
    with db.as_system() as conn:
        if key is not None:
            rows = find_users(conn, auth_user_id=key)
        else:
            rows = find_users(conn, email=user)
    if not rows:
        raise UnknownUser(f"no wfmon user {user!r} (give an email or auth user id of a user)")
    if len(rows) > 1:
        raise UnknownUser(f"{len(rows)} users have the email {user!r}: give the auth user id")
    return rows[0]["auth_user_id"], rows[0]["email"]


def token_for(
    db: Database, settings: Settings, user: str, ttl_hours: float = DEFAULT_TTL_HOURS
) -> str:
    """A signed token for ``user`` (email or auth user id), valid ``ttl_hours``."""
    auth_user_id, email = find_auth_user_id(db, user)
    return dev_token(
        str(auth_user_id), jwt_secret(settings), ttl_seconds=int(ttl_hours * 3600), email=email
    )


def signin_url(base_url: str, token: str, next_path: str = "/projects") -> str:
    """A link that signs the browser in with ``token`` and opens ``next_path``.

    The token travels in the URL *fragment* (``/signin#token=...``), which browsers never
    send to the server: the sign-in page's script posts it (a request body, never logged)
    and the server answers with the HttpOnly cookie. Anyone holding the link can sign in
    until the token expires: share it only on your own machine.
    """
    from urllib.parse import urlencode

    return f"{base_url.rstrip('/')}/signin#{urlencode({'token': token, 'next': next_path})}"
