"""A throwaway Ray cluster on 127.0.0.1 for tests and benchmarks: a head and worker nodes
started with ``ray start --block`` (each its own process group of raylet and workers);
:meth:`LocalLocalRayCluster.stop` stops them.

The head runs no tasks (``--num-cpus=0``): the process that connects to the cluster (the
``maestro worker`` under test) attaches to the head's raylet, so a node a test kills is
never the one that process depends on. Each worker node has one CPU, so two tasks run on
two nodes. The nodes run this checkout's code (``PYTHONPATH``). Stopping a ``ray start
--block`` process with SIGTERM stops every process it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalRayCluster", "parent_of", "ray_installed"]

_REPO = Path(__file__).resolve().parents[2]
"""The folder that holds ``maestro_lite`` (and ``pipelines``): put on the nodes' path."""
_STARTED = "Ray runtime started"


def ray_installed() -> bool:
    """Whether Ray (and its ``ray`` command) is installed next to this Python."""
    return (Path(sys.executable).parent / "ray").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class _Process:
    """One ``ray start --block`` and the lines it printed."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)


class LocalRayCluster:
    """A head and ``nodes`` worker nodes of one CPU each (see the module documentation).

    Raises:
        RuntimeError: A node did not start (its output is in the message).
    """

    def __init__(self, nodes: int = 2) -> None:
        self.temp_dir = Path(tempfile.mkdtemp(prefix="mray", dir="/tmp"))  # short: sockets
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(_REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.head = self._start(
            "--head",
            f"--port={self.port}",
            "--num-cpus=0",
            "--include-dashboard=false",
            f"--ray-client-server-port={_free_port()}",
        )
        self.nodes: list[_Process] = []
        self._wait(self.head)
        # One after the other: raylets starting at the same moment race for ports.
        for _ in range(nodes):
            self.nodes.append(self._start(f"--address={self.address}", "--num-cpus=1"))
            self._wait(self.nodes[-1])

    def _start(self, *args: str) -> _Process:
        command = [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
            f"--dashboard-agent-listen-port={_free_port()}",
            *args,
        ]
        process = subprocess.Popen(
            command,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started = _Process(process)
        threading.Thread(target=started.read, daemon=True).start()
        return started

    def _wait(self, started: _Process) -> None:
        deadline = time.monotonic() + 120
        while _STARTED not in started.output:
            if started.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ray start failed:\n{started.output[-3000:]}")
            time.sleep(0.1)

    def raylet_pids(self) -> dict[int, int]:
        """The raylet pid of each worker node, by node index."""
        out: dict[int, int] = {}
        for index, node in enumerate(self.nodes):
            for child in _children(node.process.pid):
                if "/raylet/raylet " in _command(child):
                    out[index] = child
        return out

    def restart(self, index: int) -> None:
        """Stop worker node ``index`` (what is left of it) and start a fresh one there."""
        _stop(self.nodes[index])
        self.nodes[index] = self._start(f"--address={self.address}", "--num-cpus=1")
        self._wait(self.nodes[index])

    def stop(self) -> None:
        for started in [*self.nodes, self.head]:
            _stop(started)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _stop(started: _Process) -> None:
    if started.process.poll() is None:
        started.process.send_signal(signal.SIGTERM)
        try:
            started.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(started.process.pid, signal.SIGKILL)
            started.process.wait()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def parent_of(pid: int) -> int:
    """The parent pid of ``pid`` (a Ray worker's parent is its node's raylet)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])
