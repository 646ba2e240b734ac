"""Retry history in the node's own policy words.

The policy shown is the one Temporal RECORDED when the node was scheduled (the component
row's ``retry_policy``), turned back into the builder's strategy so that it reads the way
the node was configured ("fail after 3 attempts, 1s apart") and attempts are labelled by
the strategy itself ("attempt 2 of 3", :meth:`wfmon.model.retry._Strategy.attempt_label`).

An attempt that was followed by another is a retry. It is *expected* exactly when the
component row says so (``is_expected_retry``: the policy allowed it and the node then
succeeded or is still within its attempts, see docs/user-guide/retry-policies.md);
otherwise it is *unexpected* and the explanation says why (attempts used up, a
non-retryable error, a timeout, a cancellation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any

from pydantic import ValidationError

from wfmon.model.duration import parse_duration
from wfmon.model.retry import (
    ExponentialBackoff,
    FailAfterAttempts,
    KeepTrying,
    NoRetries,
)
from wfmon.model.vocabulary import ComponentStatus, is_failure

Strategy = KeepTrying | FailAfterAttempts | ExponentialBackoff | NoRetries

_OUTCOME_WORDS = {
    "completed": "succeeded",
    "failed": "failed",
    "timed_out": "timed out",
    "canceled": "was canceled",
    "running": "is running",
}


@dataclass(frozen=True)
class Policy:
    """A recorded policy, read as a strategy (None when Temporal recorded none).

    Its words are computed once per policy (a page repeats a few policies over many
    components, and :func:`policy_from_recorded` shares each one between requests)."""

    strategy: Strategy | None
    recorded: dict[str, Any] | None
    #: attempt number -> its label, filled as labels are asked for.
    _labels: dict[int, str] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @cached_property
    def sentence(self) -> str:
        return self.strategy.describe() if self.strategy else "retry policy not recorded"

    @property
    def strategy_name(self) -> str:
        return self.strategy.strategy if self.strategy else "unknown"

    @property
    def max_attempts(self) -> int:
        return self.strategy.max_attempts_allowed if self.strategy else 0

    def label(self, attempt: int) -> str:
        label = self._labels.get(attempt)
        if label is None:
            label = self._labels[attempt] = (
                self.strategy.attempt_label(attempt) if self.strategy else f"attempt {attempt}"
            )
        return label

    @cached_property
    def fields(self) -> tuple[tuple[str, Any], ...]:
        """The fields of :class:`~wfmon.api.models.PolicyOut`, in order (a tuple: one
        policy is shared, each response gets its own dict of them)."""
        return (
            ("sentence", self.sentence),
            ("strategy", self.strategy_name),
            ("max_attempts", self.max_attempts),
            ("recorded", self.recorded),
        )


def policy_from_recorded(recorded: Mapping[str, Any] | None) -> Policy:
    """The builder strategy that maps to this Temporal policy (see ``to_temporal``)."""
    if not recorded:
        return Policy(None, None)
    # Executions repeat a handful of policies: parse each distinct one once.
    return _policy_from_json(json.dumps(recorded, sort_keys=True, default=str))


@lru_cache(maxsize=1024)
def _policy_from_json(text: str) -> Policy:
    raw = json.loads(text)
    try:
        attempts = int(raw.get("maximum_attempts") or 0)
        coefficient = float(raw.get("backoff_coefficient") or 2.0)
        initial = parse_duration(raw.get("initial_interval") or "1s")
        maximum = parse_duration(raw.get("maximum_interval") or "0s")
        strategy: Strategy
        if attempts == 1:
            strategy = NoRetries()
        elif coefficient == 1.0:
            strategy = (
                KeepTrying(interval=initial)
                if attempts == 0
                else FailAfterAttempts(max_attempts=attempts, interval=initial)
            )
        else:
            strategy = ExponentialBackoff(
                initial_interval=initial,
                maximum_interval=max(maximum, initial),
                backoff_coefficient=coefficient,
                max_attempts=max(attempts, 0),
            )
    except (ValueError, TypeError, ValidationError):
        return Policy(None, raw)
    return Policy(strategy, raw)


def _why_unexpected(component: Mapping[str, Any], policy: Policy, last: int) -> str:
    status = component["status"]
    state = (component.get("retry_state") or "").upper()
    if status == "timed_out" or "TIMEOUT" in state:
        return "the node timed out"
    if status == "canceled":
        return "the node was canceled"
    if "NON_RETRYABLE" in state:
        kind = component.get("error_type")
        return "a non-retryable error" + (f" ({kind})" if kind else "") + " ended the retries"
    if policy.max_attempts and last >= policy.max_attempts:
        return f"the node failed after using all {policy.max_attempts} attempts"
    if status == "failed":
        return "the node failed in the end"
    return "more attempts than the policy allows"


def _duration_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


def explain_attempts(
    component: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]], policy: Policy
) -> list[dict[str, Any]]:
    """One entry per attempt (the fields of :class:`~wfmon.api.models.AttemptOut`, as
    plain values), oldest first, each explained against the policy.

    Attempts the worker did not record (a workflow run by another worker) are filled in
    from the component row's attempt number, marked as not recorded.
    """
    by_number = {int(a["attempt"]): a for a in attempts}
    last = int(component.get("temporal_attempt") or 1)
    if by_number:
        last = max(last, *by_number)
    expected = bool(component.get("is_expected_retry"))
    sentence = policy.sentence
    explained: list[dict[str, Any]] = []
    for n in range(1, last + 1):
        row = by_number.get(n)
        if row is None:
            # The final attempt is the component row itself; earlier ones were not recorded.
            if n == last:
                outcome = _component_outcome(component)
                started, ended = component.get("started_at"), component.get("completed_at")
                ftype, fmsg = component.get("error_type"), component.get("error_message")
            else:
                outcome, started, ended = "failed", None, None
                ftype, fmsg = None, "(not recorded by a wfmon worker)"
        else:
            outcome = str(row["outcome"])
            started, ended = row.get("started_at"), row.get("ended_at")
            ftype, fmsg = row.get("failure_type"), row.get("failure_message")
        label = policy.label(n)
        words = _OUTCOME_WORDS.get(outcome, outcome)
        retried = n < last
        if retried:
            if expected:
                after = (
                    "the node then succeeded"
                    if component["status"] == ComponentStatus.COMPLETED
                    else "the node is still within its attempts"
                )
                explanation = f"{sentence}: {label} {words}; retried as expected ({after})"
            else:
                why = _why_unexpected(component, policy, last)
                explanation = f"{sentence}: {label} {words}; retried, unexpected: {why}"
        elif is_failure(outcome):
            why = _why_unexpected(component, policy, last)
            explanation = f"{sentence}: {label} {words}; {why}"
        else:
            explanation = f"{sentence}: {label} {words}"
        explained.append(
            {
                "attempt": n,
                "label": label,
                "started_at": started,
                "ended_at": ended,
                "duration_ms": _duration_ms(started, ended),
                "outcome": outcome,
                "failure_type": ftype,
                "failure_message": fmsg,
                "retried": retried,
                "retry_expected": expected if retried else None,
                "explanation": explanation,
            }
        )
    return explained


def _component_outcome(component: Mapping[str, Any]) -> str:
    status = str(component["status"])
    return {"pending": "running", "retrying": "failed"}.get(status, status)


def retry_summary(component: Mapping[str, Any], policy: Policy, attempts: int) -> str:
    """One line for the card header: how many retries and whether they were expected."""
    retries = max(0, attempts - 1)
    if retries == 0:
        return f"no retries ({policy.sentence})"
    plural = "retry" if retries == 1 else "retries"
    if component.get("is_expected_retry"):
        return f"{retries} {plural}, expected under the policy ({policy.sentence})"
    return f"{retries} {plural}, unexpected: {_why_unexpected(component, policy, attempts)}"
