"""The pieces of a provider's limits that need nothing else: the limits themselves and the
token bucket that enforces a rate (used in one process by
:class:`~maestro_lite.limits.Limiter`, and across processes by
:class:`~maestro_lite.shared_limits.SQLiteGates`)."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ProviderLimits", "RateBucket"]


class ProviderLimits(BaseModel):
    """Limits of one provider; ``None`` means unlimited."""

    model_config = ConfigDict(frozen=True)

    max_concurrent: int | None = Field(default=8, ge=1)
    """Calls in flight at once."""
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    """Prompt plus completion tokens."""


class RateBucket:
    """A token bucket sized so that no 60-second window sees more than ``per_minute``: a
    burst of about one second's worth (``capacity``), refilled at ``(per_minute -
    capacity) / 60`` per second, since a full bucket plus a minute of refill is the most a
    window can take. It may go into debt: a request larger than the bucket passes when the
    bucket is full, and later requests wait until the debt is paid back."""

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.capacity = max(1.0, per_minute / 61.0)
        spare = per_minute - self.capacity
        # Below about 2 per minute there is nothing to spare: allow one burst request more.
        self.rate = (spare if spare > 0 else per_minute) / 60.0
        self.level = self.capacity
        self._clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` may be taken (0 if now)."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level - amount)
