"""HS256 JSON Web Tokens (RFC 7519 / RFC 7515), made and checked with PyJWT.

Guarantees of :func:`decode_hs256`:

- only ``alg: HS256`` is accepted (``none`` and every other algorithm are refused by the
  library before the signature is looked at, so a token cannot choose a weaker check than
  the server's);
- the library verifies the signature (constant-time comparison) and enforces ``exp`` and
  ``nbf`` when present (with ``leeway`` seconds of clock skew); ``sub`` must be present and
  a non-empty string; ``exp``/``nbf`` must be numbers;
- other claims (``aud``, ``iss``, ``iat``, ``jti``, ``role``, ``email`` ...) are carried,
  not judged, as before the library took over: a Supabase access token (``aud:
  authenticated``) verifies as it did;
- every failure raises :class:`TokenError` with a message safe to show (never the secret).

A token that verified is remembered for a minute (at most ``_REMEMBERED`` tokens, with
the secret it verified under): a client sends the same token with every request, and
this skips the HMAC and the JSON decoding of the next ones. ``exp`` and ``nbf`` are still
judged on every call, as the library judges them; a remembered token that no longer
passes is decoded again by the library, so it fails with the same error as before.
Only tokens that verified are remembered.

Supabase access tokens are HS256 with ``sub`` = the auth user's id, so they verify here
with the project's JWT secret. Tokens made before PyJWT (same header, same compact JSON)
verify unchanged.
"""

from __future__ import annotations

import time
from typing import Any, Final

import jwt
from jwt.exceptions import InvalidSubjectError
from jwt.types import Options

ALGORITHM: Final = "HS256"
#: Tokens longer than this are refused before any decoding (a cheap denial-of-service guard).
MAX_TOKEN_LENGTH: Final = 8192

#: What the library judges beyond signature and algorithm: ``exp`` and ``nbf`` when
#: present, ``sub`` required. The rest is carried as before (see the module docstring).
_CHECKS: Final[Options] = {
    "require": ["sub"],
    "verify_exp": True,
    "verify_nbf": True,
    "verify_sub": True,
    "verify_aud": False,
    "verify_iss": False,
    "verify_iat": False,
    "verify_jti": False,
}
#: Signature and algorithm only: to name what is wrong with the claims of a token whose
#: signature verified.
_SIGNATURE_ONLY: Final[Options] = {
    **_CHECKS,
    "require": [],
    "verify_exp": False,
    "verify_nbf": False,
    "verify_sub": False,
}


#: How long (seconds) and how many verified tokens are remembered.
_REMEMBER_S: Final = 60.0
_REMEMBERED: Final = 4096
#: (token, secret) -> (when it verified, time.monotonic(); its claims).
_verified: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}


class TokenError(ValueError):
    """The token is malformed, badly signed, expired or lacks a subject."""


def encode_hs256(claims: dict[str, Any], secret: str) -> str:
    """A compact HS256 JWT carrying ``claims`` (JSON-serialisable)."""
    if not secret:
        raise ValueError("the JWT secret is empty")
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _check_claim_types(claims: dict[str, Any]) -> None:
    for name in ("exp", "nbf"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise TokenError(f"token {name} is not a number")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenError("token has no subject (sub)")


def _library_decode(token: str, secret: str, *, leeway: float, options: Options) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], leeway=leeway, options=options
        )
    except jwt.InvalidAlgorithmError:
        raise TokenError("token algorithm must be HS256") from None
    except jwt.InvalidSignatureError:
        raise TokenError("token signature does not verify") from None
    except jwt.ExpiredSignatureError:
        _name_bad_claims(token, secret)
        raise TokenError("token has expired") from None
    except jwt.ImmatureSignatureError:
        _name_bad_claims(token, secret)
        raise TokenError("token is not valid yet") from None
    except (jwt.MissingRequiredClaimError, InvalidSubjectError):
        raise TokenError("token has no subject (sub)") from None
    except jwt.DecodeError as exc:
        _name_bad_claims(token, secret)
        raise TokenError(f"token is malformed ({exc})") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"token does not verify ({type(exc).__name__})") from None
    return claims


def _name_bad_claims(token: str, secret: str) -> None:
    """Raise the precise error (``exp is not a number``, ...) for a token whose signature
    verifies but whose claims the library refused; return when there is none to name."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options=_SIGNATURE_ONLY
        )
    except jwt.InvalidTokenError:
        return
    _check_claim_types(claims)


def decode_hs256(
    token: str, secret: str, *, leeway: float = 30.0, now: float | None = None
) -> dict[str, Any]:
    """The verified claims of ``token``; raises :class:`TokenError` when it does not verify.

    ``now`` (seconds since the epoch, for tests) judges ``exp`` and ``nbf`` as at that time:
    the library reads the wall clock, so its leeway is shifted by the difference."""
    if not secret:
        raise TokenError("the server has no JWT secret configured")
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("token is empty or too long")
    if now is not None:
        skew = time.time() - now
        claims = _library_decode(
            token, secret, leeway=leeway + skew, options={**_CHECKS, "verify_nbf": False}
        )
        _library_decode(
            token, secret, leeway=leeway - skew, options={**_CHECKS, "verify_exp": False}
        )
        _check_claim_types(claims)
        return claims
    remembered = _remembered(token, secret, leeway)
    if remembered is not None:
        return remembered
    claims = _library_decode(token, secret, leeway=leeway, options=_CHECKS)
    _check_claim_types(claims)
    if len(_verified) >= _REMEMBERED:
        _verified.clear()  # the simplest bound: each token then verifies once more
    _verified[(token, secret)] = (time.monotonic(), claims)
    return dict(claims)


def _remembered(token: str, secret: str, leeway: float) -> dict[str, Any] | None:
    """The claims of a token that verified under ``secret`` less than ``_REMEMBER_S`` ago,
    when its ``exp`` and ``nbf`` still pass as the library judges them (PyJWT 2:
    ``int(exp) <= now - leeway`` has expired, ``int(nbf) > now + leeway`` is not valid
    yet); None otherwise (and it is forgotten)."""
    key = (token, secret)
    entry = _verified.get(key)
    if entry is None:
        return None
    at, claims = entry
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if (
        time.monotonic() - at > _REMEMBER_S
        or (exp is not None and int(exp) <= now - leeway)
        or (nbf is not None and int(nbf) > now + leeway)
    ):
        _verified.pop(key, None)
        return None
    return dict(claims)


def dev_token(
    sub: str, secret: str, *, ttl_seconds: int = 7 * 24 * 3600, email: str | None = None
) -> str:
    """A token for development and demos: ``sub``, ``iat``, ``exp`` (and ``email``)."""
    issued = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "role": "authenticated",
    }
    if email:
        claims["email"] = email
    return encode_hs256(claims, secret)
