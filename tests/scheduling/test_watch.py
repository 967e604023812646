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
    FilesDeleted,
    FilesIngested,
    FolderWatcher,
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


async def checked(watcher: FolderWatcher, clock: ManualClock, seconds: float) -> None:
    """Move ``clock`` on by ``seconds`` and wait until ``watcher`` has checked its pending
    files at the new time (its poll interval is shorter than ``seconds``, so it wakes)."""
    before = watcher.checks
    clock.advance(seconds)
    await wait_for(lambda: watcher.checks > before)


W = ("kept", "pruned")


def deleted_names(events: list[WorkerEvent | Event], watch: str) -> list[str]:
    """The names of the files ``watch`` reported deleted, over all its events."""
    return sorted(
        Path(p).name
        for e in events
        if isinstance(e, FilesDeleted) and e.watch == watch
        for p in e.paths
    )


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
                await checked(watcher, clock, SETTLE / 2)  # looks again before it settles
                assert batches(events) == []  # not read half-way, the burst kept together
        await checked(watcher, clock, SETTLE / 2)
        assert batches(events) == []
        await checked(watcher, clock, SETTLE / 2)  # unchanged for SETTLE since its last piece
        assert len(batches(events)) == 1
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


async def test_deleted_files_are_reported_and_with_prune_taken_off_the_corpus(
    settings: Settings, store: SQLiteScheduleStore, tmp_path: Path
) -> None:
    kept_box, pruned_box = tmp_path / "kept", tmp_path / "pruned"
    for folder, prune in ((kept_box, False), (pruned_box, True)):
        (folder / "sub").mkdir(parents=True)
        (folder / "a.txt").write_text(f"{folder.name}: {V1}")
        (folder / "copy.txt").write_text(f"{folder.name}: {V1}")  # same content: one document
        (folder / "b.txt").write_text(f"{folder.name}: {V2}")
        (folder / "sub" / "c.txt").write_text(f"{folder.name}: a note on the liability cap.")
        store.add_watch(Watch.create(folder, corpus=folder.name, prune=prune))
    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    events: list[WorkerEvent | Event] = []
    async with make_worker(settings, store, clock, events=events, settle=SETTLE, poll=1.0) as w:
        await wait_for(lambda: len(batches(events)) == 0 and len(w.watching) == 2)
        await wait_for(lambda: all(len(w.watchers[n].pending) == 4 for n in W))
        clock.advance(SETTLE)
        await wait_for(lambda: len(batches(events)) == 2)
        for folder in (kept_box, pruned_box):
            (folder / "a.txt").unlink()  # its content stays in copy.txt
            (folder / "b.txt").unlink()
        # The two deletions usually come as one event per watch, but an OS that reports
        # them apart (a stall between the two unlinks) may give two.
        await wait_for(lambda: all(deleted_names(events, n) == ["a.txt", "b.txt"] for n in W))

    reports = {n: [e for e in events if isinstance(e, FilesDeleted) and e.watch == n] for n in W}
    assert not any(e.pruned or e.removed for e in reports["kept"])
    assert set(await documents(settings, "kept")) == {"a.txt", "b.txt", "c.txt"}
    assert all(e.pruned for e in reports["pruned"])
    assert len([d for e in reports["pruned"] for d in e.removed]) == 1  # b.txt's document
    assert set(await documents(settings, "pruned")) == {"copy.txt", "c.txt"}
    assert str(pruned_box / "b.txt") not in store.seen_files("pruned")

    # Deleted while no worker ran (a whole folder): found by the scan at start.
    for folder in (kept_box, pruned_box):
        for file in (folder / "sub").iterdir():
            file.unlink()
        (folder / "sub").rmdir()
    events.clear()
    async with make_worker(settings, store, clock, events=events, settle=SETTLE, poll=1.0) as w:
        await wait_for(lambda: len([e for e in events if isinstance(e, FilesDeleted)]) == 2)
    assert {Path(p).name for e in events if isinstance(e, FilesDeleted) for p in e.paths} == {
        "c.txt"
    }
    assert set(await documents(settings, "pruned")) == {"copy.txt"}
    assert "c.txt" in await documents(settings, "kept")
