"""Pure parts of the web app: HS256 tokens, retry policies in the node's own words, and
what the server log redacts."""

from __future__ import annotations

import base64
import json

import pytest
from temporalio.api.common.v1 import RetryPolicy as PbRetryPolicy

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
    assert [v.retried for v in views] == [True, True, False]
    assert views[0].failure_message == "(not recorded by a wfmon worker)"
    assert views[0].retry_expected is False
    assert views[2].failure_message == "boom"
    assert retry_summary(component, policy, 3).startswith("2 retries, unexpected")


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
