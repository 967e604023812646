"""Which document records a reader may see, and the writes that change that crash-safely.

A record is *visible* when it is complete, not being deleted, and no visible record lists it
in ``replaces``. Every reader goes through :meth:`Records.of`, and every write that hides a
document does so with one record write before a single chunk is touched:

* a new version of a file is marked complete together with the ids it replaces (old
  versions no other file holds: a document lists every path it was ingested from, and
  one still held by another file only loses the path, in the same record write);
* a removed document is marked ``deleting``.

Only then are the hidden documents deleted (chunks first, see
:meth:`~maestro_lite.store.VectorStore.delete_documents`) and the ``replaces`` lists cleared.
A crash anywhere leaves hidden records, never an old version next to its new one or chunks
nobody knows to leave out; :func:`finish_interrupted` completes the work on the next write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..documents.model import DocumentInfo
from ..store.base import StoredDocument, VectorStore
from ._claims import Claims

__all__ = ["Records", "finish_interrupted", "retire", "tombstone"]


@dataclass(frozen=True)
class Records:
    """A corpus's document records, as readers see them."""

    visible: dict[str, DocumentInfo]
    hidden: list[str]
    """Ids readers leave out, with their chunks: incomplete (being written), being deleted,
    or superseded by a newer version of their file."""
    unfinished: list[StoredDocument]
    """Visible records whose ``replaces`` is not cleared yet (their old versions may still
    be stored)."""

    @classmethod
    def of(cls, stored: Sequence[StoredDocument]) -> Records:
        live = [d for d in stored if d.complete and not d.deleting]
        # A record being deleted still hides what it replaced: removing the new version of
        # a file must not bring back the old one.
        superseded = {old for d in stored if d.complete for old in d.replaces}
        visible = {d.info.id: d.info for d in live if d.info.id not in superseded}
        return cls(
            visible=visible,
            hidden=[d.info.id for d in stored if d.info.id not in visible],
            unfinished=[d for d in live if d.replaces and d.info.id in visible],
        )


def tombstone(info: DocumentInfo, replaces: Sequence[str] = ()) -> StoredDocument:
    """A record that hides ``info`` (and what it ``replaces``) until it is deleted."""
    return StoredDocument(info=info, complete=True, deleting=True, replaces=tuple(replaces))


async def retire(
    store: VectorStore, corpus: str, hidden: Sequence[str], unfinished: Sequence[StoredDocument]
) -> None:
    """Delete the ``hidden`` documents, then clear the ``replaces`` of ``unfinished``.

    Call it only once readers no longer see ``hidden`` (and the version is bumped, so that
    cached snapshots are dropped): this is where their chunks go.
    """
    await store.delete_documents(corpus, list(hidden))
    await store.put_documents(corpus, [d.model_copy(update={"replaces": ()}) for d in unfinished])


async def finish_interrupted(
    store: VectorStore, corpus: str, claims: Claims
) -> tuple[int, Records]:
    """Finish what an interrupted writer left: delete every hidden record (incomplete,
    being deleted, superseded) with its chunks, and clear finished ``replaces`` lists.

    An incomplete record may be another writer's work in progress (another process, or
    another machine on a Chroma server): it counts as abandoned only when its claim can be
    taken (its writer released it, died or let it lapse), and is read again after that,
    since its writer may have finished in between.

    Returns:
        How many hidden records were deleted, and the records as they are afterwards.
    """
    stored = await store.documents(corpus)
    records = Records.of(stored)
    if not records.hidden and not records.unfinished:
        return 0, records
    incomplete = [d.info.id for d in stored if not d.complete]
    busy = await claims.busy(incomplete)  # one look for all, before trying any
    taken = [id for id in incomplete if id not in busy and await claims.take(id)]
    try:
        if taken:
            stored = await store.documents(corpus)
            records = Records.of(stored)
        busy = {d.info.id for d in stored if not d.complete} - set(taken)
        doomed = [id for id in records.hidden if id not in busy]
        if doomed or records.unfinished:
            await retire(store, corpus, doomed, records.unfinished)
            await store.bump_version(corpus)
    finally:
        await claims.release(taken)
    return len(doomed), Records(visible=records.visible, hidden=sorted(busy), unfinished=[])
