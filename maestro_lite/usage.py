"""Usage accounting (tokens, requests, cost, time) and the limits checked before each call."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from .errors import BudgetExceeded

__all__ = ["PRICES_PER_MILLION", "Usage", "UsageLimits", "estimate_cost", "has_price"]


# USD per million tokens (input, output) for known OpenAI models, as published by OpenAI.
# Estimates only: prices change; unknown models (local, self-hosted) cost 0.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
}


def estimate_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """Estimated USD cost of a call; 0.0 for models without a known price.

    Dated snapshots (``gpt-4o-mini-2024-07-18``) use the price of their family.
    """
    prices = _prices(model)
    if prices is None:
        return 0.0
    price_in, price_out = prices
    return (input_tokens * price_in + output_tokens * price_out) / 1_000_000


def has_price(model: str) -> bool:
    """Whether ``model`` has a known price (cost limits only bind models that do)."""
    return _prices(model) is not None


@lru_cache(maxsize=256)
def _prices(model: str) -> tuple[float, float] | None:
    name = model.split(":", 1)[-1].lower()
    best = ""
    for known in PRICES_PER_MILLION:
        if (name == known or name.startswith(known + "-")) and len(known) > len(best):
            best = known
    return PRICES_PER_MILLION[best] if best else None


@dataclass(frozen=True, slots=True)
class Usage:
    """What model calls consumed. Adds up with ``+``.

    Every attempt that reached the provider counts: failed requests, retries and re-asks
    after invalid output included. Attempts that never reached it are counted apart.
    A plain frozen dataclass rather than a pydantic model: it is added up on every model call,
    and pydantic still validates and serialises it wherever it appears in results and events.
    """

    requests: int = 0
    """Model calls made, successful or not."""
    failed_requests: int = 0
    """Calls that ended in an error (HTTP error, timeout, dropped connection)."""
    unreached_requests: int = 0
    """Attempts that never reached the provider (connection refused, DNS failure, connect
    timeout): nothing was sent, so they are not counted in ``requests`` nor in its limit."""
    reasks: int = 0
    """Calls made because the previous answer did not validate against the schema."""
    cached_requests: int = 0
    """Calls answered from the response cache (not counted in ``requests``)."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    """Estimated cost, from the model's published prices (0 for local models)."""
    model_seconds: float = 0.0
    """Time spent waiting for models, summed over calls (parallel calls overlap)."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.requests + other.requests,
            self.failed_requests + other.failed_requests,
            self.unreached_requests + other.unreached_requests,
            self.reasks + other.reasks,
            self.cached_requests + other.cached_requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
            self.model_seconds + other.model_seconds,
        )


class UsageLimits(BaseModel):
    """Limits checked *before* each model call; ``None`` means unlimited."""

    model_config = ConfigDict(frozen=True)

    max_requests: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    """Input plus output tokens over all calls."""
    max_cost_usd: float | None = Field(default=None, ge=0)

    def check_before_request(
        self,
        usage: Usage,
        *,
        next_input_tokens: int = 0,
        next_output_tokens: int = 0,
        next_cost_usd: float = 0.0,
    ) -> None:
        """Raise :class:`BudgetExceeded` if one more call could break a limit.

        The call is judged by what it may spend at most: its prompt plus the most output it
        may generate, and their cost at the model's price, so that a call allowed now
        cannot overshoot a limit once it has answered.

        Args:
            usage: Usage so far, including what calls in flight have reserved.
            next_input_tokens: Estimated input tokens of the call about to be made.
            next_output_tokens: The most output tokens it may generate.
            next_cost_usd: Its estimated cost at most (0 for models without a known price).
        """
        if self.max_requests is not None and usage.requests + 1 > self.max_requests:
            raise BudgetExceeded(
                f"the next model call would exceed max_requests={self.max_requests}",
                usage=usage,
                limit=f"max_requests={self.max_requests}",
            )
        tokens = next_input_tokens + next_output_tokens
        if self.max_tokens is not None and usage.total_tokens + tokens > self.max_tokens:
            raise BudgetExceeded(
                f"the next model call (~{next_input_tokens} input + up to {next_output_tokens} "
                f"output tokens) could exceed max_tokens={self.max_tokens} "
                f"({usage.total_tokens} used or reserved)",
                usage=usage,
                limit=f"max_tokens={self.max_tokens}",
            )
        # A hair of tolerance: reserved costs are summed and subtracted in floating point.
        if (
            self.max_cost_usd is not None
            and usage.cost_usd + next_cost_usd > self.max_cost_usd + 1e-12
        ):
            raise BudgetExceeded(
                f"the next model call (~${next_cost_usd:.4f}) could exceed "
                f"max_cost_usd={self.max_cost_usd} (${usage.cost_usd:.4f} spent or reserved)",
                usage=usage,
                limit=f"max_cost_usd={self.max_cost_usd}",
            )


class UsageMeter:
    """Shared, mutable usage of a run, with the limits enforced before each call.

    Several concurrent calls may share one meter: a call reserves its request, its estimated
    input tokens plus the most output it may generate, and their cost at the model's price
    before it starts, so parallel calls cannot jointly overshoot a limit.
    """

    def __init__(self, limits: UsageLimits | None = None) -> None:
        self.limits = limits or UsageLimits()
        self.usage = Usage()
        self._reserved_requests = 0
        self._reserved_tokens = 0
        self._reserved_cost = 0.0

    def reserve(self, input_tokens: int, *, output_tokens: int = 0, cost_usd: float = 0.0) -> None:
        """Check the limits for one more call and hold its share until :meth:`release`.

        Raises:
            BudgetExceeded: The call could break a limit, counting what calls in flight hold.
        """
        pending = self.usage
        if self._reserved_requests:
            pending = pending + Usage(
                requests=self._reserved_requests,
                input_tokens=self._reserved_tokens,
                cost_usd=self._reserved_cost,
            )
        self.limits.check_before_request(
            pending,
            next_input_tokens=input_tokens,
            next_output_tokens=output_tokens,
            next_cost_usd=cost_usd,
        )
        self._reserved_requests += 1
        self._reserved_tokens += input_tokens + output_tokens
        self._reserved_cost += cost_usd

    def release(self, input_tokens: int, *, output_tokens: int = 0, cost_usd: float = 0.0) -> None:
        """Give back what :meth:`reserve` held (the call's real usage goes to :meth:`add`)."""
        self._reserved_requests -= 1
        self._reserved_tokens -= input_tokens + output_tokens
        self._reserved_cost = 0.0 if not self._reserved_requests else self._reserved_cost - cost_usd

    def add(self, usage: Usage) -> None:
        self.usage = self.usage + usage
