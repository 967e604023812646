"""Cancelling a run from outside the process that runs it (``maestro runs cancel``, the
dashboard's Cancel button).

The request is recorded in the run store; the process running the run polls for it
(:func:`until_cancelled`, every half second) and stops that run alone: it records the run
interrupted, checkpointed and resumable (``maestro resume RUN_ID``), with
:class:`~maestro_lite.errors.RunCancelled` as the cause. A ``maestro worker`` fails the job
whose run was cancelled and goes on with its other jobs.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..errors import RunCancelled, UserError
from .base import RunStore
from .sql import _alive

__all__ = ["cancel_run", "until_cancelled"]

T = TypeVar("T")

POLL_SECONDS = 0.5
"""How often a running run looks for a cancel request."""


def cancel_run(store: RunStore, run_id: str) -> str:
    """Ask the process running ``run_id`` to stop it; returns what was done, in one line.

    Raises:
        RunNotFound: No such run.
        UserError: The run is not running, or its process (on this machine) is gone.
    """
    summary = store.get(run_id).summary
    if summary.status != "running":
        raise UserError(f"run {run_id} is not running ({summary.status})")
    host, _, pid = (summary.owner or "").rpartition(":")
    this_process = host == socket.gethostname() and pid == str(os.getpid())
    if host == socket.gethostname() and not this_process and not _alive(summary.owner):
        raise UserError(
            f"the process of run {run_id} ({summary.owner}) is gone",
            hint=f"The run stopped without recording it; `maestro resume {run_id}` continues.",
        )
    store.request_cancel(run_id)
    where = f"process {pid} on {host}" if pid else "its process"
    return (
        f"asked {where} to stop run {run_id}: within a second it records the run "
        "interrupted, resumable from its checkpoints"
    )


async def until_cancelled(
    work: Coroutine[Any, Any, T],
    store: RunStore,
    run_id: str,
    *,
    every: float = POLL_SECONDS,
) -> T:
    """Await ``work`` (one run), polling ``store`` for a cancel request of ``run_id``.

    Raises:
        RunCancelled: A cancel was requested; ``work`` was cancelled and has finished.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            if await asyncio.to_thread(store.take_cancel, run_id):
                task.cancel()
                await asyncio.wait({task})
                if not task.cancelled():
                    return task.result()  # it finished before the cancel landed
                raise RunCancelled(run_id)
    except asyncio.CancelledError:  # the caller is cancelled (Ctrl-C, a stopping worker)
        task.cancel()
        await asyncio.wait({task})
        raise
