"""A process that records a run which waits inside its synthesis step until interrupted:
the dashboard's cancel action asks it to stop through the run store; it exits 4 when it did.

Usage: python -m tests.ui.maestro_run_child MAESTRO_HOME RUN_ID
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from maestro_lite.errors import RunCancelled, RunInterruptedError
from maestro_lite.models import FunctionModel, ModelCall
from maestro_lite.settings import Settings

from ..runs.conftest import fix_then_replan_model
from .conftest import record_run


def stuck_model() -> FunctionModel:
    inner = fix_then_replan_model()

    async def answer(call: ModelCall) -> Any:
        if call.step_id == "s3":  # compares the notice periods
            await asyncio.Event().wait()  # until cancelled
        return await inner.request(
            call.messages, json_schema=call.json_schema, settings=call.settings
        )

    return FunctionModel(answer, name="routed")


if __name__ == "__main__":
    os.environ["MAESTRO_HOME"] = sys.argv[1]
    try:
        asyncio.run(record_run(Settings.from_env(), sys.argv[2], model=stuck_model()))
    except RunInterruptedError as stopped:
        sys.exit(4 if isinstance(stopped.cause, RunCancelled) else 1)
