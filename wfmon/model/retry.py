"""Retry policies a node can have, and their one mapping to Temporal's ``RetryPolicy``.

A policy is one of four strategies, told apart by its ``strategy`` field:

=======================  =============================================================
``keep_trying``          retry until the node succeeds, every ``interval`` (default 1 s)
``fail_after_attempts``  at most ``max_attempts`` attempts, every ``interval`` (default 1 s)
``exponential_backoff``  ``initial_interval`` (1 s) times ``backoff_coefficient`` (2.0) per
                         attempt, capped at ``maximum_interval`` (100 s), at most
                         ``max_attempts`` attempts (0 = unlimited; default 0)
``no_retries``           exactly one attempt
=======================  =============================================================

The defaults of ``exponential_backoff`` are Temporal's own, so a node that says only
``{"strategy": "exponential_backoff"}`` behaves like a Temporal activity with no policy.
Error types listed in a node's ``non_retryable_error_types`` end retries under every
strategy (see :meth:`Node.temporal_retry_policy`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

import temporalio.common
from pydantic import BaseModel, ConfigDict, Field

from wfmon.model.duration import Duration, format_duration

#: Interval between attempts when a strategy does not say (Temporal's default too).
DEFAULT_INTERVAL = timedelta(seconds=1)
#: Temporal's default cap: 100 x the initial interval.
DEFAULT_MAXIMUM_INTERVAL = timedelta(seconds=100)
DEFAULT_BACKOFF_COEFFICIENT = 2.0


class _Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def max_attempts_allowed(self) -> int:
        """Attempts the policy allows in total; 0 means unlimited (Temporal's convention)."""
        raise NotImplementedError

    def to_temporal(
        self, non_retryable_error_types: list[str] | None = None
    ) -> temporalio.common.RetryPolicy:
        """The Temporal retry policy that enforces this strategy (the only such mapping)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One sentence a person reads, e.g. ``"fail after 3 attempts, 1s apart"``."""
        raise NotImplementedError

    def attempt_label(self, attempt: int) -> str:
        """How the UI names an attempt: ``"attempt 2 of 3"`` or ``"attempt 2"`` when unlimited."""
        limit = self.max_attempts_allowed
        return f"attempt {attempt} of {limit}" if limit else f"attempt {attempt}"


class KeepTrying(_Strategy):
    """Retry until success, at a fixed interval."""

    strategy: Literal["keep_trying"] = "keep_trying"
    interval: Duration = DEFAULT_INTERVAL

    @property
    def max_attempts_allowed(self) -> int:
        return 0

    def to_temporal(
        self, non_retryable_error_types: list[str] | None = None
    ) -> temporalio.common.RetryPolicy:
        return temporalio.common.RetryPolicy(
            initial_interval=self.interval,
            backoff_coefficient=1.0,
            maximum_interval=self.interval,
            maximum_attempts=0,
            non_retryable_error_types=non_retryable_error_types or None,
        )

    def describe(self) -> str:
        return f"keep trying until success, every {format_duration(self.interval)}"


class FailAfterAttempts(_Strategy):
    """At most ``max_attempts`` attempts (the first run counts), at a fixed interval."""

    strategy: Literal["fail_after_attempts"] = "fail_after_attempts"
    max_attempts: Annotated[int, Field(ge=1)] = 3
    interval: Duration = DEFAULT_INTERVAL

    @property
    def max_attempts_allowed(self) -> int:
        return self.max_attempts

    def to_temporal(
        self, non_retryable_error_types: list[str] | None = None
    ) -> temporalio.common.RetryPolicy:
        return temporalio.common.RetryPolicy(
            initial_interval=self.interval,
            backoff_coefficient=1.0,
            maximum_interval=self.interval,
            maximum_attempts=self.max_attempts,
            non_retryable_error_types=non_retryable_error_types or None,
        )

    def describe(self) -> str:
        plural = "attempt" if self.max_attempts == 1 else "attempts"
        return f"fail after {self.max_attempts} {plural}, {format_duration(self.interval)} apart"


class ExponentialBackoff(_Strategy):
    """Wait ``initial_interval``, then ``backoff_coefficient`` times longer each retry."""

    strategy: Literal["exponential_backoff"] = "exponential_backoff"
    initial_interval: Duration = DEFAULT_INTERVAL
    maximum_interval: Duration = DEFAULT_MAXIMUM_INTERVAL
    backoff_coefficient: Annotated[float, Field(ge=1.0)] = DEFAULT_BACKOFF_COEFFICIENT
    #: 0 = unlimited.
    max_attempts: Annotated[int, Field(ge=0)] = 0

    @property
    def max_attempts_allowed(self) -> int:
        return self.max_attempts

    def to_temporal(
        self, non_retryable_error_types: list[str] | None = None
    ) -> temporalio.common.RetryPolicy:
        return temporalio.common.RetryPolicy(
            initial_interval=self.initial_interval,
            backoff_coefficient=self.backoff_coefficient,
            maximum_interval=max(self.maximum_interval, self.initial_interval),
            maximum_attempts=self.max_attempts,
            non_retryable_error_types=non_retryable_error_types or None,
        )

    def describe(self) -> str:
        limit = (
            f"fail after {self.max_attempts} attempts"
            if self.max_attempts
            else "keep trying until success"
        )
        return (
            f"{limit}, waiting {format_duration(self.initial_interval)} then "
            f"x{self.backoff_coefficient:g} per retry, at most "
            f"{format_duration(self.maximum_interval)}"
        )


class NoRetries(_Strategy):
    """Exactly one attempt."""

    strategy: Literal["no_retries"] = "no_retries"

    @property
    def max_attempts_allowed(self) -> int:
        return 1

    def to_temporal(
        self, non_retryable_error_types: list[str] | None = None
    ) -> temporalio.common.RetryPolicy:
        return temporalio.common.RetryPolicy(
            maximum_attempts=1, non_retryable_error_types=non_retryable_error_types or None
        )

    def describe(self) -> str:
        return "no retries: fail on the first error"


RetryPolicy = Annotated[
    KeepTrying | FailAfterAttempts | ExponentialBackoff | NoRetries,
    Field(discriminator="strategy"),
]
"""A node's retry policy: one of the four strategies, chosen by ``strategy``."""

#: A node without a ``retry_policy`` fails after 3 attempts, 1 s apart.
DEFAULT_RETRY_POLICY: RetryPolicy = FailAfterAttempts()
