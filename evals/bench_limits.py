"""Provider limits across processes: eight processes against one OpenAI-compatible server.

Each process makes ``--calls`` calls at once through ``Limiter.from_settings`` (what every
CLI command uses). Two set-ups, side by side in one run:

* ``own home``: each process on its own ``MAESTRO_HOME``, so nothing is shared between them
  (what every process had before the shared gates);
* ``one home``: all eight on one home, sharing ``limits.sqlite3``.

With ``MAESTRO_MAX_CONCURRENT`` the figure is the most calls the server saw in flight at once;
with ``MAESTRO_REQUESTS_PER_MINUTE`` it is the requests the server got in the first 6 seconds.
Also the cost of one lease (acquire and release) in the shared file, in-process.

Run: ``python -m evals.bench_limits``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from maestro_lite.rates import ProviderLimits
from maestro_lite.shared_limits import SQLiteGates
from maestro_lite.testing.openai_server import OpenAICompatibleServer

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import asyncio, sys
from maestro_lite import Settings
from maestro_lite.limits import Limiter
from maestro_lite.model_stack import ModelStack
from maestro_lite.models import Message, ModelSettings, model_from_settings

async def main() -> None:
    settings = Settings.from_env()
    limiter = Limiter.from_settings(settings)
    model = ModelStack(limiter=limiter).wrap(model_from_settings(settings))
    await asyncio.gather(*(
        model.request([Message.user(f"call {i}")], json_schema=None,
                      settings=ModelSettings(max_tokens=8))
        for i in range(int(sys.argv[1]))
    ))

asyncio.run(main())
"""


def _processes(
    base_url: str, homes: list[Path], calls: int, limits: dict[str, str]
) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MAESTRO_PROVIDER": "openai",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "bench",
        "MAESTRO_MODEL": "test-model",
        **limits,
    }
    return [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(calls)], env={**env, "MAESTRO_HOME": str(home)}
        )
        for home in homes
    ]


def scenario(
    shared: bool, limits: dict[str, str], *, processes: int, calls: int, latency: float
) -> dict[str, Any]:
    stamps: list[float] = []
    lock = threading.Lock()

    def answer(body: Any) -> str:
        with lock:
            stamps.append(time.monotonic())
        return "ok"

    with (
        tempfile.TemporaryDirectory() as tmp,
        OpenAICompatibleServer(answer, latency=latency) as server,
    ):
        root = Path(tmp)
        homes = [root / ("one" if shared else f"own{i}") for i in range(processes)]
        children = _processes(server.base_url, homes, calls, limits)
        for child in children:
            child.wait(timeout=600)
        first = min(stamps) if stamps else 0.0
        return {
            "max_in_flight": server.max_in_flight,
            "in_first_6s": sum(1 for t in stamps if t - first < 6.0),
            "answered": server.answered,
            "failed": sum(1 for c in children if c.returncode),
        }


def lease_cost(pairs: int = 2000) -> float:
    """Microseconds per acquire + release in a fresh shared file (one process)."""
    with tempfile.TemporaryDirectory() as tmp:
        gates = SQLiteGates(Path(tmp) / "limits.sqlite3")
        limits = ProviderLimits(max_concurrent=8, requests_per_minute=1e9)
        started = time.perf_counter()
        for _ in range(pairs):
            lease, _ = gates.try_acquire("p", limits, 0)
            assert lease is not None
            gates.release(lease, "p", limits, 0)
        elapsed = time.perf_counter() - started
        gates.close()
    return elapsed / pairs * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--calls", type=int, default=4, help="Calls per process, at once.")
    args = parser.parse_args(argv)
    runs = [
        ("MAESTRO_MAX_CONCURRENT=2", {"MAESTRO_MAX_CONCURRENT": "2"}, "max_in_flight", 0.5),
        ("MAESTRO_REQUESTS_PER_MINUTE=60", {"MAESTRO_REQUESTS_PER_MINUTE": "60"}, "in_first_6s", 0),
    ]
    print("| limit | figure | own home each | one home |")
    print("|---|---|---:|---:|")
    for name, limits, figure, latency in runs:
        size = {"processes": args.processes, "calls": args.calls, "latency": latency}
        apart = scenario(False, limits, **size)
        together = scenario(True, limits, **size)
        print(f"| `{name}` | {figure} | {apart[figure]} | {together[figure]} |")
        for label, result in (("own", apart), ("one", together)):
            if result["failed"]:
                print(f"  ({label} home: {result['failed']} processes failed)")
    print(f"\nlease (acquire + release) in the shared file: {lease_cost():.0f} us")


if __name__ == "__main__":
    main()
