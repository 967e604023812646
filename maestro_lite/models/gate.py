"""A gate in front of every model call, for a graceful stop: calls in flight finish, no
new one starts.

A :class:`CallGate` is bound to a task tree with :func:`gated` (tasks created inside inherit
it); :func:`~maestro_lite.models.generate` then counts each attempt in flight on it and,
once the gate is closed, waits before an attempt rather than making it. The waiting attempt
is made nowhere and counted nowhere, so cancelling it (the worker does, once the calls in
flight have finished or the grace period is over) costs nothing; an answer that arrived is
recorded by the run as usual, so a resumed run does not pay for it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["CallGate", "current_gate", "gated"]

_GATE: ContextVar[CallGate | None] = ContextVar("maestro_call_gate", default=None)


class CallGate:
    """Counts model calls in flight; once closed, holds every new one back."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def closed(self) -> bool:
        return not self._open.is_set()

    def close(self) -> None:
        """Let no new call start (those in flight go on)."""
        self._open.clear()

    async def admit(self) -> None:
        """Return at once while open; once closed, wait until cancelled."""
        await self._open.wait()

    @contextmanager
    def call(self) -> Iterator[None]:
        """Count one call in flight for the duration of the block."""
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    async def drained(self) -> None:
        """Return once no call is in flight."""
        await self._idle.wait()


def current_gate() -> CallGate | None:
    """The gate of the running task, if one was bound with :func:`gated`."""
    return _GATE.get()


@contextmanager
def gated(gate: CallGate) -> Iterator[None]:
    """Put the model calls of this task (and the tasks it creates) behind ``gate``."""
    token = _GATE.set(gate)
    try:
        yield
    finally:
        _GATE.reset(token)
