"""A real process running the scenario's multi-step run against an HTTP endpoint, recording
it in a run store; the crash test kills it with SIGKILL.

Usage: python -m tests.runs.crash_child DB BASE_URL RUN_ID [CONCURRENCY]
"""

from __future__ import annotations

import asyncio
import sys

from maestro_lite import RetryPolicy
from maestro_lite.models import OpenAIModel
from maestro_lite.orchestrator import Maestro
from maestro_lite.runs import SQLiteRunStore

from ..orchestration.conftest import V1, V2, MemoryRetriever, make_chunk

TASK = "Compare the two versions"
REQUIREMENTS = ["cover the governing law of both versions"]


def contracts() -> MemoryRetriever:
    return MemoryRetriever(
        [make_chunk("v1", "Agreement 2023", V1), make_chunk("v2", "Agreement 2025", V2)]
    )


async def main(db: str, base_url: str, run_id: str, concurrency: int = 1) -> None:
    async with OpenAIModel("test-model", base_url=base_url, timeout=60) as model:
        maestro = Maestro(
            model,
            concurrency=concurrency,
            retry=RetryPolicy(max_retries=0),
            run_store=SQLiteRunStore(db),
        )
        await maestro.run(TASK, corpus=contracts(), requirements=REQUIREMENTS, run_id=run_id)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4], *(int(n) for n in sys.argv[4:5])))
