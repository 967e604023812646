"""Watched folders: new and changed files are ingested once they settle, and start jobs.

A :class:`FolderWatcher` hears about files from watchfiles (inotify and friends) and then
waits until each file's size and modification time have not changed for ``settle``
seconds, so a file still being copied or written in pieces is never read half-way. Files
that settle together go into the corpus as one batch: while some file of a burst is
still changing, the ones that have settled wait for it (up to ``max_wait`` seconds).

What the watcher has seen is recorded per file (size, modification time, content digest,
outcome) in the schedule store, together with the jobs a batch queues, in one
transaction. At start it compares the folder with those records, so files that arrived or
changed while no watcher ran are picked up, and a file touched without being changed is
not ingested or run on again. A file the corpus cannot read is reported (and recorded, so
it is not retried until it changes); the watcher goes on.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import watchfiles
from pydantic import BaseModel, ConfigDict, Field

from ..corpus.corpus import Corpus
from ..corpus.ingest import IngestFailure, IngestReport, collect_files
from ..documents.loaders import LoaderRegistry, document_id
from ..errors import UserError
from ..store import check_corpus_name
from .clock import Clock, sleep_or_wake
from .events import FilesDeleted, FilesIngested, WatchStarted, WorkerEvent
from .jobs import JobInputs, JobRecord, JobSpec, check_name, check_placeholders

__all__ = ["FileStatus", "FolderWatcher", "SeenFile", "Watch", "WatchStore"]

FileStatus = Literal["ingested", "updated", "unchanged", "no_text", "failed"]


class Watch(BaseModel):
    """A folder whose new and changed files go into a corpus, optionally starting a job."""

    model_config = ConfigDict(frozen=True)

    name: str
    directory: str
    """Absolute path of the folder (watched recursively, hidden entries skipped)."""
    corpus: str
    job: JobSpec | None = None
    """What to start for ingested files (``None``: only ingest)."""
    per: Literal["file", "batch"] = "file"
    """One job per ingested file (``{file}``), or one per batch (``{files}``)."""
    prune: bool = False
    """Take files deleted from the folder off the corpus (a document no other file holds is
    removed); without it a deletion is reported and the document kept."""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def create(
        cls,
        directory: str | Path,
        *,
        corpus: str,
        name: str | None = None,
        job: JobSpec | None = None,
        per: Literal["file", "batch"] = "file",
        prune: bool = False,
    ) -> Watch:
        """A validated watch; named after the folder unless ``name`` is given.

        Raises:
            UserError: The folder does not exist, or a bad name or placeholder.
        """
        path = Path(os.path.abspath(os.path.expanduser(directory)))
        if not path.is_dir():
            raise UserError(
                f"{directory} is not a folder", hint="Create it first, or watch another one."
            )
        check_corpus_name(corpus)
        if name is None:
            name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name).strip("-._") or "watch"
        check_name(name, "watch")
        if job is not None:
            fills = {"name", "files", "corpus"} | ({"file"} if per == "file" else set())
            check_placeholders(job, "watch", allowed=sorted(fills))
        return cls(name=name, directory=str(path), corpus=corpus, job=job, per=per, prune=prune)


class SeenFile(BaseModel):
    """A file a watch has handled, as it was then."""

    model_config = ConfigDict(frozen=True)

    path: str
    size: int
    mtime_ns: int
    digest: str
    """The content id (``document_id`` of its bytes); empty when it could not be read."""
    status: FileStatus
    detail: str | None = None
    """Why it failed."""
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


_Stat = tuple[int, int]


def _stat(path: str) -> _Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None


@dataclass
class _Pending:
    stat: _Stat
    since: float
    """Clock time of the last change seen."""


class WatchStore(Protocol):
    """What a watched folder needs of the schedule store
    (:class:`~maestro_lite.scheduling.ScheduleStore` is one): the files it has handled, and
    the jobs they start."""

    def seen_files(self, watch: str) -> dict[str, SeenFile]:
        """The files a watch has handled, by path."""
        ...

    def record_files(
        self, watch: str, files: Sequence[SeenFile], jobs: Sequence[JobRecord]
    ) -> None:
        """Record handled files and queue the jobs they start, atomically."""
        ...

    def forget_files(self, watch: str, paths: Sequence[str]) -> None:
        """Drop the records of files deleted from a watch's folder."""
        ...


class FolderWatcher:
    """Runs one :class:`Watch` until cancelled (the worker starts one per watch).

    Args:
        watch: What to watch.
        corpus: The watch's corpus, open for writing.
        store: Where seen files and queued jobs are recorded.
        clock: Time for settling.
        emit: Receives the watcher's events.
        queued: Called with the jobs a batch queued.
        lock: Held while ingesting (one writer per corpus).
        settle: Seconds a file's size and modification time must stay the same.
        poll: Seconds between checks while files are settling.
        max_wait: Seconds settled files wait for the rest of their burst.
        rescan: Seconds between scans of the whole folder while idle, for changes the
            operating system does not report (network file systems).
        loaders: Which files are documents (by suffix).
    """

    def __init__(
        self,
        watch: Watch,
        *,
        corpus: Corpus,
        store: WatchStore,
        clock: Clock,
        emit: Callable[[WorkerEvent], None],
        queued: Callable[[Sequence[JobRecord]], None],
        lock: asyncio.Lock | None = None,
        settle: float = 2.0,
        poll: float = 0.5,
        max_wait: float = 30.0,
        rescan: float = 60.0,
        loaders: LoaderRegistry | None = None,
    ) -> None:
        self.watch = watch
        self.corpus = corpus
        self.store = store
        self.clock = clock
        self.emit = emit
        self.queued = queued
        self.lock = lock or asyncio.Lock()
        self.settle = settle
        self.poll = poll
        self.max_wait = max_wait
        self.rescan = rescan
        self.loaders = loaders if loaders is not None else corpus.loaders
        self.root = Path(watch.directory)
        self._pending: dict[str, _Pending] = {}
        self._seen: dict[str, SeenFile] = {}
        self._deleted: set[str] = set()
        """Seen files reported deleted (or found missing by a scan), to settle."""
        self._noticed = asyncio.Event()
        self.checks = 0
        """How many times it has checked its pending files. Each check reads the clock
        anew, so a test that moves a :class:`ManualClock` waits for this to grow to know
        the watcher saw the new time (counting sleepers is not enough: a watcher woken by a
        notice still counts as asleep until its task runs)."""

    @property
    def pending(self) -> dict[str, _Stat]:
        """Files waiting to settle, with the size and modification time last seen."""
        return {path: p.stat for path, p in self._pending.items()}

    def wants(self, path: str) -> bool:
        """Whether ``path`` is a document this watch ingests (hidden entries are not)."""
        try:
            parts = Path(path).relative_to(self.root).parts
        except ValueError:
            return False
        return (
            bool(parts)
            and not any(p.startswith(".") for p in parts)
            and (self.loaders.supports(path))
        )

    def _changed(self, path: str, stat: _Stat) -> bool:
        seen = self._seen.get(path)
        return seen is None or (seen.size, seen.mtime_ns) != stat

    def notice(self, path: str) -> None:
        """Start waiting for ``path`` to settle (a no-op for files it does not want)."""
        path = os.path.abspath(path)
        if path in self._pending or not self.wants(path):
            return
        stat = _stat(path)
        if stat is not None and self._changed(path, stat):
            self._pending[path] = _Pending(stat, self.clock.monotonic())
            self._noticed.set()

    async def run(self) -> None:
        """Pick up what changed while nobody watched, then watch until cancelled.

        Raises:
            UserError: The folder does not exist (any more).
        """
        if not self.root.is_dir():
            raise UserError(
                f"watched folder {self.root} does not exist",
                hint="Create it again, or remove the watch.",
            )
        self._seen = await asyncio.to_thread(self.store.seen_files, self.watch.name)
        listener = asyncio.create_task(self._listen())
        listener.add_done_callback(lambda _: self._noticed.set())
        # watchfiles sets up its OS watch when the listener first runs, before it waits;
        # scanning after that, every file is found by the scan or heard of by the listener.
        for _ in range(3):
            await asyncio.sleep(0)
        await self._scan()
        self.emit(
            WatchStarted(
                watch=self.watch.name,
                directory=self.watch.directory,
                corpus=self.watch.corpus,
                waiting=len(self._pending),
            )
        )
        try:
            while True:
                await self._tick()
                self.checks += 1
                # Idle, the watcher still sleeps on the clock (waking on a notice), so a
                # test with a manual clock can tell when it has handled the present.
                woken = await sleep_or_wake(
                    self.clock, self.poll if self._pending else self.rescan, self._noticed
                )
                if listener.done():
                    listener.result()  # the folder went away: raise what watchfiles said
                if not woken and not self._pending:
                    await self._scan()  # for changes the OS never reported (network shares)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _scan(self) -> None:
        """Wait for every document in the folder that is new or changed since it was seen,
        and note the seen ones that are gone (deleted while nobody watched)."""
        seen = list(self._seen)

        def look() -> tuple[list[Path], list[str]]:
            files, _ = collect_files([self.root], self.loaders)
            return files, _missing(seen)

        files, gone = await asyncio.to_thread(look)
        for file in files:
            self.notice(str(file))
        self._deleted.update(gone)

    def deleted(self, path: str) -> None:
        """Note that ``path`` was deleted: a seen file, or a folder holding seen files."""
        path = os.path.abspath(path)
        if path in self._seen:  # a file: no scan (a deleted folder reports each of its files)
            gone = {path}
        else:
            inside = path.rstrip(os.sep) + os.sep
            gone = {p for p in self._seen if p.startswith(inside)}
        if gone:
            self._deleted |= gone
            self._noticed.set()

    async def _listen(self) -> None:
        async for changes in watchfiles.awatch(
            self.root, watch_filter=None, debounce=400, step=50, recursive=True
        ):
            for change, path in changes:
                if change == watchfiles.Change.deleted:
                    self.deleted(path)
                else:
                    self.notice(path)

    async def _tick(self) -> None:
        """Settle deletions; re-check the pending files; ingest the settled ones when their
        burst is over."""
        if self._deleted:
            candidates, self._deleted = sorted(self._deleted), set()
            # Deleted and written again (an editor saving by rename) is a change, not a loss.
            gone = await asyncio.to_thread(_missing, candidates)
            if gone:
                await self._forget(gone)
        now = self.clock.monotonic()
        for path, entry in list(self._pending.items()):
            stat = _stat(path)
            if stat is None:
                del self._pending[path]  # deleted (or replaced by a folder) while settling
            elif stat != entry.stat:
                entry.stat, entry.since = stat, now
        settled = sorted(p for p, e in self._pending.items() if now - e.since >= self.settle)
        if not settled:
            return
        oldest = min(self._pending[p].since for p in settled)
        if len(settled) < len(self._pending) and now - oldest < self.settle + self.max_wait:
            return  # part of a burst is still being written: keep the batch together
        for path in settled:
            del self._pending[path]
        await self._ingest(settled)

    async def _ingest(self, paths: Sequence[str]) -> None:
        digests = await asyncio.to_thread(_digests, paths)
        fresh = [
            p
            for p in paths
            if digests[p] is None or self._seen.get(p) is None or self._seen[p].digest != digests[p]
        ]
        report = IngestReport(corpus=self.corpus.name)
        if fresh:
            async with self.lock:
                report = await self.corpus.ingest(fresh)
        outcome = _outcomes(report, fresh)
        records: list[SeenFile] = []
        for path in paths:
            stat = _stat(path) or (0, 0)
            status, detail = outcome.get(path, ("unchanged", None))
            digest = digests[path] or ""
            records.append(
                SeenFile(
                    path=path,
                    size=stat[0],
                    mtime_ns=stat[1],
                    digest=digest,
                    status=status,
                    detail=detail,
                )
            )
        jobs = self._jobs(
            [r.path for r in records if r.path in fresh and r.status not in ("failed", "no_text")]
        )
        await asyncio.to_thread(self.store.record_files, self.watch.name, records, jobs)
        self._seen.update({r.path: r for r in records})
        self.emit(
            FilesIngested(
                watch=self.watch.name,
                corpus=self.corpus.name,
                ingested=[r.path for r in records if r.status == "ingested"],
                updated=[r.path for r in records if r.status == "updated"],
                unchanged=[r.path for r in records if r.status == "unchanged"],
                no_text=[r.path for r in records if r.status == "no_text"],
                failed=report.failed,
                jobs=[j.job_id for j in jobs],
            )
        )
        if jobs:
            self.queued(jobs)

    async def _forget(self, paths: Sequence[str]) -> None:
        """Files deleted from the folder: with ``prune`` taken off the corpus; recorded as
        no longer seen (so a file put back is ingested again), and reported."""
        removed: list[str] = []
        if self.watch.prune:
            async with self.lock:
                removed = [d.id for d in await self.corpus.forget_paths(paths)]
        await asyncio.to_thread(self.store.forget_files, self.watch.name, paths)
        for path in paths:
            self._seen.pop(path, None)
        self.emit(
            FilesDeleted(
                watch=self.watch.name,
                corpus=self.corpus.name,
                paths=list(paths),
                pruned=self.watch.prune,
                removed=removed,
            )
        )

    def _jobs(self, files: Sequence[str]) -> list[JobRecord]:
        """The jobs ``files`` start (one per file, or one for all of them)."""
        job = self.watch.job
        if job is None or not files:
            return []
        base = JobInputs(
            source="watch", name=self.watch.name, files=list(files), corpus=self.watch.corpus
        )
        if self.watch.per == "batch":
            return [JobRecord.queue(job, base)]
        return [JobRecord.queue(job, base.model_copy(update={"file": f})) for f in files]


def _missing(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if not os.path.lexists(p)]


def _digests(paths: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for path in paths:
        try:
            out[path] = document_id(Path(path).read_bytes())
        except OSError:
            out[path] = None
    return out


def _outcomes(
    report: IngestReport, paths: Sequence[str]
) -> dict[str, tuple[FileStatus, str | None]]:
    """Each file's status in ``report``."""
    out: dict[str, tuple[FileStatus, str | None]] = {}
    for info in report.ingested:
        out[info.path] = ("ingested", None)
    for info in report.updated:
        out[info.path] = ("updated", None)
    for info in report.no_text:
        out[info.path] = ("no_text", None)
    for path in report.unchanged:
        out[path] = ("unchanged", None)
    failures: list[IngestFailure] = list(report.failed)
    for failure in failures:
        out[failure.path] = ("failed", f"{failure.reason}: {failure.detail}")
    for path in paths:
        out.setdefault(path, ("failed", "not ingested (no loader reads it)"))
    return out
