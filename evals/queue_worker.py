"""A worker process whose jobs each make one model call: the shared job queue under load,
with nothing else in the way (no corpus, no planning). The multi-worker tests and
``evals/bench_queue.py`` start several of these against one PostgreSQL queue.

Run: ``python -m evals.queue_worker [MAX_JOBS]`` with the settings in the environment
(``MAESTRO_DATABASE_URL``, ``MAESTRO_PROVIDER=openai``, ``OPENAI_BASE_URL`` ...: see
:func:`worker_env`); it prints ``ready`` once it takes jobs and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict

from maestro_lite import Settings
from maestro_lite.models import Message, ModelSettings, model_from_settings
from maestro_lite.scheduling import Job, JobContext, JobOutcome, JobRunner, Worker
from maestro_lite.scheduling.events import WorkerStarted

__all__ = ["PingJob", "main", "ping_runner", "worker_env"]


class PingJob(Job):
    """One model call whose prompt is ``text``; its output is the reply."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ping"] = "ping"
    text: str


def ping_runner(settings: Settings) -> JobRunner[PingJob]:
    """The runner of ``ping`` jobs, calling the model the settings name."""
    model = model_from_settings(settings)

    async def run(job: PingJob, context: JobContext) -> JobOutcome:
        raw = await model.request(
            [Message(role="user", content=job.text)], json_schema=None, settings=ModelSettings()
        )
        return JobOutcome(status="passed", output=raw.text)

    return JobRunner(PingJob, run)


async def _serve(settings: Settings, max_jobs: int) -> None:
    runner = ping_runner(settings)
    worker: Worker

    def started(event: object) -> None:
        if isinstance(event, WorkerStarted):
            print("ready", flush=True)

    worker = Worker(
        model_from_settings(settings),
        settings=settings,
        runners={"ping": runner},
        max_jobs=max_jobs,
        queue_poll=0.05,
        grace=0,
        on_event=started,
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.request_stop)
    await worker.run()


def worker_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process on ``home`` whose model is the OpenAI-compatible
    endpoint ``base_url`` (``extra``: more variables, such as ``MAESTRO_DATABASE_URL``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "OPENAI_"))}
    env.update(
        MAESTRO_HOME=str(home),
        MAESTRO_EMBEDDER="hashing",
        MAESTRO_PROVIDER="openai",
        MAESTRO_MODEL="test-model",
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="test",
        MAESTRO_ALLOW_DOWNLOAD="0",
        **extra,
    )
    return env


def main(argv: list[str]) -> None:
    max_jobs = int(argv[0]) if argv else 1
    asyncio.run(_serve(Settings.from_env(), max_jobs))


if __name__ == "__main__":
    main(sys.argv[1:])
