"""The hand-off between parsing and writing never loses a document.

Regression: when the consumer's short wait for another document timed out in the same
event-loop iteration in which the producer queued its last document and finished, the
consumer saw "producer done" before its queue read had run, and returned with the document
still in the queue: an ingestion then reported one file fewer, silently.
"""

from __future__ import annotations

import asyncio
import time

from maestro_lite.corpus.ingest import _next


async def test_an_item_queued_as_the_wait_times_out_is_not_lost() -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    release = asyncio.Event()

    async def produce() -> None:
        await release.wait()
        queue.put_nowait("last document")
        queue.put_nowait(None)

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0)  # the producer now waits for `release`
    linger = 0.01
    # Both timers (ours, then the consumer's linger) expire in one iteration: a blocking
    # callback holds the loop past both deadlines, so the producer finishes and the linger
    # fires before the consumer's queue read can run.
    loop.call_later(linger, release.set)
    loop.call_soon(time.sleep, 3 * linger)
    first = await _next(queue, producer, linger=linger)  # type: ignore[arg-type]
    got = [first]
    while got[-1] not in (None,):
        got.append(await _next(queue, producer, linger=linger))  # type: ignore[arg-type]
    assert "last document" in got
    await producer
