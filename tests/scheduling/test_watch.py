"""Watched folders: files dropped in (one written slowly in pieces, one malformed PDF) are
ingested exactly once each and start their runs; files that arrive while no worker runs
are picked up at the next start."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from maestro_lite import Corpus, Settings, UserError
from maestro_lite.events import Event
from maestro_lite.scheduling import (
    FilesIngested,
    ManualClock,
    RunJob,
    SQLiteScheduleStore,
    Watch,
    WatchStarted,
    WorkerEvent,
)
from maestro_lite.testing import HashingEmbedder

from ..orchestration.conftest import V1, V2
from .conftest import Recorder, make_worker, settled, wait_for

SETTLE = 4.0
SLOW = [
    "Minutes of the board meeting. ",
    "The board approved the budget. ",
    "The notice period is now 60 days. ",
    "Signed by the chair.",
]


def batches(events: list[WorkerEvent | Event]) -> list[FilesIngested]:
    return [e for e in events if isinstance(e, FilesIngested)]


async def documents(settings: Settings, corpus: str) -> dict[str, int]:
    """Path -> characters of every document in the corpus."""
    async with await Corpus.open(
        corpus, settings=settings, embedder=HashingEmbedder(), create=False
    ) as opened:
        return {Path(d.path).name: d.chars for d in await opened.documents()}


@pytest.fixture
def inbox(tmp_path: Path, store: SQLiteScheduleStore) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    store.add_watch(Watch.create(folder, corpus="inbox", job=RunJob(task="Summarise {file}")))
    return folder


def test_a_watch_is_validated_when_declared(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not a folder"):
        Watch.create(tmp_path / "missing", corpus="inbox")
    with pytest.raises(UserError, match=r"\{file\} .* has no value"):
        Watch.create(tmp_path, corpus="inbox", per="batch", job=RunJob(task="Read {file}"))
    watch = Watch.create(tmp_path, corpus="inbox", per="batch", job=RunJob(task="Read {files}"))
    assert watch.name == tmp_path.name and watch.directory == str(tmp_path)


async def test_dropped_files_are_ingested_once_each_and_start_their_runs(
    settings: Settings, store: SQLiteScheduleStore, inbox: Path
) -> None:
    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    runner = Recorder()
    events: list[WorkerEvent | Event] = []
    worker = make_worker(
        settings, store, clock, runner=runner, events=events, settle=SETTLE, poll=1.0
    )
    async with worker:
        await wait_for(lambda: any(isinstance(e, WatchStarted) for e in events))
        watcher = worker.watchers["inbox"]
        (inbox / "a.txt").write_text(V1)
        (inbox / "b.md").write_text("# Amendment\n\n" + V2)
        (inbox / "bad.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog broken")
        (inbox / ".partial.txt").write_text("hidden files are not documents")
        slow = inbox / "slow.txt"
        with slow.open("w") as handle:
            handle.write(SLOW[0])
            handle.flush()
            wanted = {str(inbox / n) for n in ("a.txt", "b.md", "bad.pdf", "slow.txt")}
            await wait_for(lambda: set(watcher.pending) == wanted)
            for piece in SLOW[1:]:
                handle.write(piece)
                handle.flush()
                clock.advance(SETTLE / 2)  # the watcher looks again before it settles
                await settled(clock, 2)
                assert batches(events) == []  # not read half-way, the burst kept together
        clock.advance(SETTLE / 2)
        await settled(clock, 2)
        assert batches(events) == []
        clock.advance(SETTLE / 2)  # unchanged for SETTLE since its last piece
        await wait_for(lambda: len(runner.jobs) == 3)

        # The bad file did not stop the watcher: the next file goes in too.
        (inbox / "later.txt").write_text("A later note about the liability cap.")
        await wait_for(lambda: str(inbox / "later.txt") in watcher.pending)
        clock.advance(SETTLE)
        await wait_for(lambda: len(runner.jobs) == 4)

    first, second = batches(events)
    assert sorted(Path(p).name for p in first.ingested) == ["a.txt", "b.md", "slow.txt"]
    assert [(Path(f.path).name, f.reason) for f in first.failed] == [("bad.pdf", "malformed")]
    assert [Path(p).name for p in second.ingested] == ["later.txt"]
    assert sorted(job.task for job, _ in runner.jobs) == sorted(
        f"Summarise {inbox / n}" for n in ("a.txt", "b.md", "slow.txt", "later.txt")
    )
    stored = await documents(settings, "inbox")
    assert stored["slow.txt"] == len("".join(SLOW).strip())  # the whole file, read once
    assert set(stored) == {"a.txt", "b.md", "slow.txt", "later.txt"}
    seen = store.seen_files("inbox")
    assert seen[str(inbox / "bad.pdf")].status == "failed"


async def test_files_that_arrive_while_no_worker_runs_are_picked_up_at_start(
    settings: Settings, store: SQLiteScheduleStore, inbox: Path
) -> None:
    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    for name in ("a.txt", "b.txt"):
        (inbox / name).write_text(f"{name}: {V1}")
    (inbox / "bad.pdf").write_bytes(b"not a pdf at all")
    runner = Recorder()
    events: list[WorkerEvent | Event] = []
    async with make_worker(
        settings, store, clock, runner=runner, events=events, settle=SETTLE, poll=1.0
    ) as worker:
        # Files already there when a watch first starts count as new.
        await wait_for(lambda: "inbox" in worker.watchers)
        await wait_for(lambda: len(worker.watchers["inbox"].pending) == 3)
        clock.advance(SETTLE)
        await wait_for(lambda: len(runner.jobs) == 2)

    # While no worker runs: one file added, one changed, one touched but not changed.
    (inbox / "c.txt").write_text(V2)
    (inbox / "a.txt").write_text("a.txt, revised: " + V2)
    b = inbox / "b.txt"
    os.utime(b, ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns + 5_000_000_000))
    events.clear()
    async with make_worker(
        settings, store, clock, runner=runner, events=events, settle=SETTLE, poll=1.0
    ) as worker:
        await wait_for(lambda: any(isinstance(e, WatchStarted) for e in events))
        started = next(e for e in events if isinstance(e, WatchStarted))
        assert started.waiting == 3  # c (new), a (changed), b (touched); not bad.pdf again
        clock.advance(SETTLE)
        await wait_for(lambda: len(runner.jobs) == 4)
        await settled(clock, 2)

    [batch] = batches(events)
    assert [Path(p).name for p in batch.ingested] == ["c.txt"]
    assert [Path(p).name for p in batch.updated] == ["a.txt"]
    assert [Path(p).name for p in batch.unchanged] == ["b.txt"] and batch.failed == []
    assert sorted(job.task for job, _ in runner.jobs[2:]) == [
        f"Summarise {inbox / 'a.txt'}",
        f"Summarise {inbox / 'c.txt'}",
    ]
    assert set(await documents(settings, "inbox")) == {"a.txt", "b.txt", "c.txt"}


async def test_a_removed_watch_stops_and_a_changed_one_starts_again(
    settings: Settings, store: SQLiteScheduleStore, inbox: Path
) -> None:
    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    async with make_worker(settings, store, clock, runner=Recorder()) as worker:
        await wait_for(lambda: worker.watching == ["inbox"])
        running = worker.watchers["inbox"]
        store.add_watch(
            Watch.create(inbox, corpus="inbox", job=RunJob(task="Read {file}")), replace=True
        )
        worker.wake()
        await wait_for(lambda: worker.watchers["inbox"] is not running)
        assert worker.watching == ["inbox"]
        assert worker.watchers["inbox"].watch.job == RunJob(task="Read {file}")
        store.remove_watch("inbox")
        worker.wake()
        await wait_for(lambda: worker.watching == [])
