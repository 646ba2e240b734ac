"""HS256 JSON Web Tokens with the standard library only (RFC 7519 / RFC 7515).

Guarantees of :func:`decode_hs256`:

- only ``alg: HS256`` is accepted (``none`` and every other algorithm are refused, so a
  token cannot choose a weaker check than the server's);
- the signature is compared in constant time (:func:`hmac.compare_digest`);
- ``exp`` and ``nbf`` are enforced when present (with ``leeway`` seconds of clock skew),
  and ``sub`` must be present;
- every failure raises :class:`TokenError` with a message safe to show (never the secret).

Supabase access tokens are HS256 with ``sub`` = the auth user's id, so they verify here
with the project's JWT secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Final

ALGORITHM: Final = "HS256"
#: Tokens longer than this are refused before any decoding (a cheap denial-of-service guard).
MAX_TOKEN_LENGTH: Final = 8192


class TokenError(ValueError):
    """The token is malformed, badly signed, expired or lacks a subject."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("token is not valid base64url") from None


def _sign(signing_input: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()


def encode_hs256(claims: dict[str, Any], secret: str) -> str:
    """A compact HS256 JWT carrying ``claims`` (JSON-serialisable)."""
    if not secret:
        raise ValueError("the JWT secret is empty")
    header = _b64encode(
        json.dumps({"alg": ALGORITHM, "typ": "JWT"}, separators=(",", ":")).encode()
    )
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{_b64encode(_sign(signing_input, secret))}"


def decode_hs256(
    token: str, secret: str, *, leeway: float = 30.0, now: float | None = None
) -> dict[str, Any]:
    """The verified claims of ``token``; raises :class:`TokenError` when it does not verify."""
    if not secret:
        raise TokenError("the server has no JWT secret configured")
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("token is empty or too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token must have three dot-separated parts")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = json.loads(_b64decode(header_b64))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("token header is not JSON") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise TokenError("token algorithm must be HS256")
    expected = _sign(f"{header_b64}.{payload_b64}".encode("ascii", "replace"), secret)
    if not hmac.compare_digest(expected, _b64decode(signature_b64)):
        raise TokenError("token signature does not verify")
    try:
        claims = json.loads(_b64decode(payload_b64))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("token payload is not JSON") from None
    if not isinstance(claims, dict):
        raise TokenError("token payload is not a JSON object")
    current = time.time() if now is None else now
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is not None:
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise TokenError("token exp is not a number")
        if current > exp + leeway:
            raise TokenError("token has expired")
    if nbf is not None:
        if not isinstance(nbf, int | float) or isinstance(nbf, bool):
            raise TokenError("token nbf is not a number")
        if current + leeway < nbf:
            raise TokenError("token is not valid yet")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenError("token has no subject (sub)")
    return claims


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
