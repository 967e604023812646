"""What a worker costs while it waits, and how soon a dropped burst of files is ingested.

1. Idle: a worker with one watched folder and one hourly schedule, nothing to do, for
   ``--idle`` seconds; reported as process CPU time per minute (the queue is polled once
   a second, the folder through inotify).
2. Burst: ``--files`` small text files written at once into the watched folder; reported
   as seconds from the last write to the batch being ingested (one batch), with
   ``--settle`` seconds of required quiet. The time is settle + the watcher's 0.5 s
   check period + watchfiles' debounce + ingestion (hashing embedder, embedded Chroma).

Run: ``python -m evals.bench_worker`` (``--idle 60 --files 200 --settle 0.5``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from maestro_lite import RunJob, Schedule, Settings, SQLiteScheduleStore, Watch
from maestro_lite.events import Event
from maestro_lite.scheduling import FilesIngested, Worker, WorkerEvent
from maestro_lite.testing import FunctionModel, HashingEmbedder


def _write(inbox: Path, files: int) -> None:
    for i in range(files):
        Path(inbox, f"note{i}.txt").write_text(f"Note {i}: the notice period is 60 days.")


async def measure(
    home: Path, inbox: Path, idle: float, files: int, settle: float
) -> dict[str, float]:
    """The figures, for a fresh ``home`` and an empty ``inbox``."""
    settings = Settings(home=home, embedder="hashing")
    ingested: list[float] = []
    first = asyncio.Event()

    def on_event(event: WorkerEvent | Event) -> None:
        if isinstance(event, FilesIngested):
            ingested.append(time.perf_counter())
            first.set()

    with SQLiteScheduleStore.open(settings) as store:
        store.add_watch(Watch.create(inbox, corpus="inbox"))
        store.add_schedule(Schedule.create("hourly", cron="0 * * * *", job=RunJob(task="t")))
        worker = Worker(
            FunctionModel(lambda call: "unused", name="none"),
            settings=settings,
            schedule_store=store,
            embedder=HashingEmbedder(),
            settle=settle,
            on_event=on_event,
        )
        async with worker:
            await asyncio.sleep(2)  # startup settles (the watch opens its corpus)
            cpu = time.process_time()
            await asyncio.sleep(idle)
            idle_cpu = time.process_time() - cpu
            await asyncio.to_thread(_write, inbox, files)
            written = time.perf_counter()
            await first.wait()
            await asyncio.sleep(4 * settle + 2)  # a second batch would have come by now
    return {
        "idle_cpu_seconds_per_minute": round(idle_cpu * 60 / idle, 4),
        "burst_files": files,
        "burst_batches": len(ingested),
        "burst_to_ingested_seconds": round(ingested[0] - written, 2),
        "settle_seconds": settle,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--settle", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp, "inbox")
        inbox.mkdir()
        figures = asyncio.run(measure(Path(tmp, "home"), inbox, args.idle, args.files, args.settle))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
