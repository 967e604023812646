"""Cancelling a run from outside the process that runs it (``maestro runs cancel``, the
dashboard's Cancel button).

The run's process is interrupted as Ctrl-C in its terminal would (SIGINT): the run records
that it was interrupted, checkpointed and resumable (``maestro resume RUN_ID``). A
``maestro worker`` stops as a whole, its jobs checkpointed, and continues them at its next
start. Only a live process on this machine whose command line names maestro is signalled,
so a pid reused by another program is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from ..errors import UserError
from .base import RunStore
from .sqlite import _alive

__all__ = ["cancel_run"]


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cancel_run(store: RunStore, run_id: str) -> str:
    """Interrupt the process running ``run_id`` (SIGINT, as Ctrl-C).

    Raises:
        UserError: The run is not running, runs on another machine, or its recorded
            process is gone or is not a maestro process (a reused pid is never signalled).
    """
    summary = store.get(run_id).summary
    if summary.status != "running":
        raise UserError(f"run {run_id} is not running ({summary.status})")
    host, _, pid = (summary.owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        raise UserError(f"run {run_id} runs on {host or 'an unknown machine'}; stop it there")
    if not _alive(summary.owner) or "maestro" not in _command_line(int(pid)):
        raise UserError(
            f"the process of run {run_id} ({summary.owner}) is gone",
            hint=f"The run stopped without recording it; `maestro resume {run_id}` continues.",
        )
    os.kill(int(pid), signal.SIGINT)
    return (
        f"asked process {pid} to stop run {run_id}: it records the run interrupted, "
        "resumable from its checkpoints"
    )
