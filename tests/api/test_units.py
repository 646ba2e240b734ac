"""Pure parts of the web app: HS256 tokens (including tokens made before PyJWT), retry
policies in the node's own words, and what the server log redacts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from temporalio.api.common.v1 import RetryPolicy as PbRetryPolicy

from wfmon.api import views
from wfmon.api.jwt import TokenError, decode_hs256, dev_token, encode_hs256
from wfmon.api.logs import redact_target, redact_text
from wfmon.api.retry_words import explain_attempts, policy_from_recorded, retry_summary
from wfmon.history.reader import _policy_dict
from wfmon.model.retry import ExponentialBackoff, FailAfterAttempts, KeepTrying, NoRetries

SECRET = "unit-secret"


def test_token_round_trip_and_refusals() -> None:
    token = dev_token("abc", SECRET, ttl_seconds=60, email="a@example.com")
    claims = decode_hs256(token, SECRET)
    assert claims["sub"] == "abc" and claims["email"] == "a@example.com"
    with pytest.raises(TokenError, match="expired"):
        decode_hs256(token, SECRET, now=claims["exp"] + 31)
    assert decode_hs256(token, SECRET, now=claims["exp"] + 29)["sub"] == "abc"  # leeway
    with pytest.raises(TokenError, match="not valid yet"):
        decode_hs256(encode_hs256({"sub": "x", "nbf": 2e9}, SECRET), SECRET, now=1e9)
    with pytest.raises(TokenError, match="subject"):
        decode_hs256(encode_hs256({"user": "x"}, SECRET), SECRET)
    with pytest.raises(TokenError, match="exp is not a number"):
        decode_hs256(encode_hs256({"sub": "x", "exp": True}, SECRET), SECRET)
    with pytest.raises(TokenError, match="does not verify"):
        decode_hs256(token, SECRET + "x")
    # A token that names another algorithm is refused before its signature is looked at.
    _, payload, sig = token.split(".")
    hs512 = base64.urlsafe_b64encode(json.dumps({"alg": "HS512"}).encode()).rstrip(b"=")
    with pytest.raises(TokenError, match="HS256"):
        decode_hs256(f"{hs512.decode()}.{payload}.{sig}", SECRET)
    for junk in ("", "a.b", "a.b.c.d", "!!!.???.***", "x" * 9000):
        with pytest.raises(TokenError):
            decode_hs256(junk, SECRET)
    with pytest.raises(TokenError, match="no JWT secret"):
        decode_hs256(token, "")


# Made by the hand-written HS256 encoder wfmon had before PyJWT (kept verbatim): secret
# "legacy-secret", exp 2100-01-01. Tokens already handed out must keep working.
LEGACY_SECRET = "legacy-secret"
LEGACY_SUB = "5b0c6a7e-3f1d-4c2a-9e8b-1d2f3a4b5c6d"
LEGACY_CLAIMS = {
    "sub": LEGACY_SUB,
    "iat": 1767225600,
    "exp": 4102444800,
    "role": "authenticated",
    "email": "legacy@example.com",
}
LEGACY_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiI1YjBjNmE3ZS0zZjFkLTRjMmEtOWU4Yi0xZDJmM2E0YjVjNmQiLCJpYXQiOjE3NjcyMjU2MDAsImV4"
    "cCI6NDEwMjQ0NDgwMCwicm9sZSI6ImF1dGhlbnRpY2F0ZWQiLCJlbWFpbCI6ImxlZ2FjeUBleGFtcGxlLmNvbSJ9."
    "R6XtmW8xG-zf2LSuYtrxe0x9C-C1KxO-GG4FjAebcow"
)
#: The same encoder, Supabase-shaped claims (aud, iss, session_id): carried, not judged.
LEGACY_SUPABASE_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJhdWQiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3NjcyMjU2MDAsImlzcyI6Imh0"
    "dHBzOi8vZXhhbXBsZS5zdXBhYmFzZS5jby9hdXRoL3YxIiwic3ViIjoiNWIwYzZhN2UtM2YxZC00YzJhLTllOGIt"
    "MWQyZjNhNGI1YzZkIiwiZW1haWwiOiJsZWdhY3lAZXhhbXBsZS5jb20iLCJyb2xlIjoiYXV0aGVudGljYXRlZCIs"
    "InNlc3Npb25faWQiOiJzLTEifQ."
    "tPItsFRCZ_monbLB6FPvB1SXpTQFo_6D6aOGbrXO0KY"
)
#: The old encoder, exp one hour after iat (2026-01-01): long expired.
LEGACY_EXPIRED_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiI1YjBjNmE3ZS0zZjFkLTRjMmEtOWU4Yi0xZDJmM2E0YjVjNmQiLCJpYXQiOjE3NjcyMjU2MDAsImV4"
    "cCI6MTc2NzIyOTIwMCwicm9sZSI6ImF1dGhlbnRpY2F0ZWQifQ."
    "P6waCT37SM-0RYOZTtXNSODxatG8D3Zdf1YH6O8mReU"
)


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def encode_with(alg: str, claims: dict[str, object]) -> str:
    """A token signed with another HMAC algorithm (same secret): never accepted."""
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}"
    sig = hmac.new(LEGACY_SECRET.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def test_tokens_made_before_pyjwt_still_verify() -> None:
    assert decode_hs256(LEGACY_TOKEN, LEGACY_SECRET) == LEGACY_CLAIMS
    supabase = decode_hs256(LEGACY_SUPABASE_TOKEN, LEGACY_SECRET)
    assert supabase["sub"] == LEGACY_SUB and supabase["aud"] == "authenticated"
    # The library's encoder writes the same bytes as the old one did.
    assert encode_hs256(LEGACY_CLAIMS, LEGACY_SECRET) == LEGACY_TOKEN
    with pytest.raises(TokenError, match=r"^token has expired$"):
        decode_hs256(LEGACY_EXPIRED_TOKEN, LEGACY_SECRET)


def test_pyjwt_refusals_keep_their_messages() -> None:
    header, payload, signature = LEGACY_TOKEN.split(".")
    refused = {
        "alg none": (f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.", "algorithm"),
        "alg none, signed": (f"{_b64({'alg': 'none'})}.{payload}.{signature}", "algorithm"),
        "no alg": (f"{_b64({'typ': 'JWT'})}.{payload}.{signature}", "algorithm"),
        "HS512": (encode_with("HS512", LEGACY_CLAIMS), "algorithm"),
        "HS384 header on an HS256 signature": (
            f"{_b64({'alg': 'HS384', 'typ': 'JWT'})}.{payload}.{signature}",
            "algorithm",
        ),
        "wrong secret": (encode_hs256(LEGACY_CLAIMS, "another-secret"), "signature"),
        "tampered payload": (
            f"{header}.{_b64({**LEGACY_CLAIMS, 'sub': str(LEGACY_SUB[::-1])})}.{signature}",
            "signature",
        ),
        "expired": (LEGACY_EXPIRED_TOKEN, "expired"),
    }
    messages = {
        "algorithm": "token algorithm must be HS256",
        "signature": "token signature does not verify",
        "expired": "token has expired",
    }
    for why, (token, kind) in refused.items():
        with pytest.raises(TokenError) as info:
            decode_hs256(token, LEGACY_SECRET)
        assert str(info.value) == messages[kind], why


@pytest.mark.parametrize(
    "strategy",
    [
        FailAfterAttempts(max_attempts=3),
        FailAfterAttempts(max_attempts=5, interval="250ms"),  # type: ignore[arg-type]
        KeepTrying(interval="2s"),  # type: ignore[arg-type]
        ExponentialBackoff(initial_interval="500ms", maximum_interval="30s", max_attempts=6),  # type: ignore[arg-type]
        ExponentialBackoff(),
        NoRetries(),
    ],
)
def test_recorded_policy_reads_as_the_strategy_the_node_had(strategy: object) -> None:
    """What Temporal records (via the history reader) reads back as the node's own words."""
    temporal = strategy.to_temporal()  # type: ignore[attr-defined]
    proto = PbRetryPolicy()
    temporal.apply_to_proto(proto)
    policy = policy_from_recorded(_policy_dict(proto))
    assert policy.sentence == strategy.describe()  # type: ignore[attr-defined]
    assert policy.label(2) == strategy.attempt_label(2)  # type: ignore[attr-defined]


def test_unrecorded_policy_and_attempts_are_said_so() -> None:
    policy = policy_from_recorded(None)
    assert policy.sentence == "retry policy not recorded" and policy.label(3) == "attempt 3"
    component = {
        "status": "failed",
        "temporal_attempt": 3,
        "is_expected_retry": False,
        "retry_state": "RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED",
        "error_type": "E",
        "error_message": "boom",
        "started_at": None,
        "completed_at": None,
    }
    views = explain_attempts(component, [], policy_from_recorded(None))
    assert [v["retried"] for v in views] == [True, True, False]
    assert views[0]["failure_message"] == "(not recorded by a wfmon worker)"
    assert views[0]["retry_expected"] is False
    assert views[2]["failure_message"] == "boom"
    assert retry_summary(component, policy, 3).startswith("2 retries, unexpected")


def test_each_recorded_policy_of_a_page_keeps_its_own_values() -> None:
    """A page reads each distinct policy once: policies that compare equal in Python but
    are different JSON (1, true, 1.0) stay apart, and one orjson cannot write (an integer
    beyond 64 bits) is still read."""
    recorded: list[dict[str, object]] = [
        {"maximum_attempts": 1},
        {"maximum_attempts": True},
        {"maximum_attempts": 1.0},
        {"maximum_attempts": 2**70},
        {"maximum_attempts": 1},
    ]
    rows = [
        {
            "id": uuid.uuid4(),
            "node_id": f"n{i}",
            "component_name": None,
            "activity_type": None,
            "kind": "activity",
            "status": "completed",
            "started_at": None,
            "completed_at": None,
            "duration_ms": None,
            "input_data": None,
            "output_data": None,
            "error_message": None,
            "error_type": None,
            "retry_count": 0,
            "is_expected_retry": False,
            "temporal_activity_id": f"n{i}",
            "temporal_attempt": 1,
            "next_retry_at": None,
            "retry_state": None,
            "retry_policy": policy,
        }
        for i, policy in enumerate(recorded)
    ]
    components = views._components_data(rows, {})
    assert [repr(c["policy"]["recorded"]) for c in components] == [repr(r) for r in recorded]
    assert components[0]["policy"] == components[4]["policy"]
    assert components[0]["policy"] is not components[4]["policy"]  # each its own dict


def test_credentials_in_request_targets_are_redacted() -> None:
    jwt = dev_token("abc", SECRET, ttl_seconds=60)
    assert redact_target(f"/signin?token={jwt}&next=/projects") == (
        "/signin?token=[redacted]&next=/projects"
    )
    for name in ("code", "api_key", "apiKey", "client_secret", "password", "access_token"):
        assert redact_target(f"/x?{name}=hunter2&page=2") == f"/x?{name}=[redacted]&page=2"
    nested = redact_target("/signin?next=%2Fprojects%3Fcode%3Dhunter2")
    assert "hunter2" not in nested and nested.startswith("/signin?next=/projects")
    assert redact_target("/projects?tab=connections&page=2") == "/projects?tab=connections&page=2"
    assert redact_target("/projects/1") == "/projects/1"
    assert jwt not in redact_text(f"Bearer {jwt} refused")
