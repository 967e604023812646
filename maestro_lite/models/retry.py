"""How a model call retries transient errors: exponential backoff with jitter, honouring
``Retry-After`` up to a bound."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_RETRY", "RetryPolicy"]


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter for transient errors (429, 5xx, timeouts, drops)."""

    model_config = ConfigDict(frozen=True)

    max_retries: int = Field(default=3, ge=0)
    """Retries after the first attempt; 0 disables retrying."""
    initial_delay: float = Field(default=0.5, ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    max_delay: float = Field(default=30.0, ge=0)
    jitter: float = Field(default=0.25, ge=0, le=1)
    """Fraction of the delay added or removed at random, so clients do not retry in step."""
    max_retry_after: float = Field(default=300.0, ge=0)
    """The longest ``Retry-After`` waited for in full. A server asking for longer (a quota
    spent for the day) is not retried: the call fails at once with the wait in the error,
    rather than hammering the server early or sleeping for hours."""

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based): the backoff, or the
        server's ``Retry-After`` when that is longer (up to ``max_retry_after``)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (retry_number - 1))
        base *= 1 + random.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            # The server knows best when it will have capacity again.
            base = max(base, min(retry_after, self.max_retry_after))
        return max(0.0, base)

    def waits_for(self, retry_after: float | None) -> bool:
        """Whether a server's ``Retry-After`` is short enough to wait for."""
        return retry_after is None or retry_after <= self.max_retry_after


DEFAULT_RETRY = RetryPolicy()
"""Shared (it is frozen): built once, not per call."""
