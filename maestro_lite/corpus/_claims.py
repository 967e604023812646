"""Claims: which writer embeds which content, when several ingest into one corpus at once.

Two machines ingesting the same folder into one corpus on a Chroma server must not both
embed a file (embedding is what costs), nor delete what the other is writing. Before it
parses a file whose content (its document id) is not in the corpus, a writer *claims* that
id in the store, where every writer sees it; a writer that finds the id claimed by a live
writer sets the file aside and comes back to it when the claim is released (the content is
then stored, so the file needs nothing but its path recorded) or lapses (the holder died:
it takes the claim over and ingests the file itself).

A claim lapses ``lease`` seconds after its last renewal; a writer renews its claims while it
holds them. A claim made on this machine by a process that no longer exists lapses at once,
so a rerun after a crash or Ctrl-C does not wait for the lease. Leases compare wall clocks:
machines sharing a corpus need clocks within a few seconds of each other.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

from ..errors import StoreError
from ..store.base import Claim, VectorStore

__all__ = ["LEASE_SECONDS", "Claims"]

LEASE_SECONDS = 30.0
"""How long a claim outlives its holder's last renewal; renewed every third of that."""

_HOST = socket.gethostname()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def live(claim: Claim, *, now: float | None = None) -> bool:
    """Whether ``claim``'s holder may still be at work: not expired, and not a process of
    this machine that has gone."""
    if claim.expires <= (time.time() if now is None else now):
        return False
    return claim.host != _HOST or claim.pid == os.getpid() or _process_exists(claim.pid)


def _latest(claims: Iterable[Claim]) -> dict[str, Claim]:
    """The current claim (highest generation) per key."""
    latest: dict[str, Claim] = {}
    for claim in claims:
        if claim.key not in latest or claim.generation > latest[claim.key].generation:
            latest[claim.key] = claim
    return latest


class Claims:
    """One writer's claims on one corpus.

    Args:
        store: The store holding the corpus.
        corpus: The corpus name.
        lease: Seconds a claim outlives its last renewal.
    """

    def __init__(self, store: VectorStore, corpus: str, *, lease: float = LEASE_SECONDS) -> None:
        self.store = store
        self.corpus = corpus
        self.lease = lease
        self.owner = uuid.uuid4().hex
        self._held: dict[str, Claim] = {}

    def holds(self, key: str) -> bool:
        """Whether this writer holds ``key``."""
        return key in self._held

    async def take(self, key: str) -> bool:
        """Claim ``key``: ``True`` when this writer holds it now, ``False`` when a live
        writer does. A lapsed claim is taken over with the next generation."""
        return key in (await self.take_many([key]))[0]

    async def take_many(self, keys: Sequence[str]) -> tuple[set[str], set[str]]:
        """Claim ``keys`` at once (a few requests, whatever their number).

        Returns:
            The keys this writer holds now, and those a live writer holds (a key whose
            claim was taken and released meanwhile is in neither: ask again).
        """
        keys = list(dict.fromkeys(keys))
        mine = {k for k in keys if k in self._held}
        wanted = [k for k in keys if k not in mine]
        latest = _latest(await self.store.claims(self.corpus, wanted)) if wanted else {}
        others = {k for k, c in latest.items() if live(c) and c.owner != self.owner}
        expires = time.time() + self.lease
        fresh = [
            Claim(
                key=key,
                generation=0 if key not in latest else latest[key].generation + 1,
                owner=self.owner,
                host=_HOST,
                pid=os.getpid(),
                expires=expires,
            )
            for key in wanted
            if key not in others
        ]
        for key, stored in (await self.store.add_claims(self.corpus, fresh)).items():
            if stored.owner == self.owner:
                self._held[key] = stored
                mine.add(key)
            else:
                others.add(key)
        return mine, others

    async def busy(self, keys: Sequence[str]) -> set[str]:
        """The ``keys`` a live writer other than this one holds."""
        latest = _latest(await self.store.claims(self.corpus, keys))
        return {k for k, c in latest.items() if c.owner != self.owner and live(c)}

    async def release(self, keys: Iterable[str]) -> None:
        """Give up these keys (those this writer holds): their older, lapsed generations
        go too."""
        mine = [self._held.pop(key) for key in dict.fromkeys(keys) if key in self._held]
        if not mine:
            return
        stored = await self.store.claims(self.corpus, [c.key for c in mine])
        top = {c.key: c.generation for c in mine}
        await self.store.delete_claims(
            self.corpus, [c for c in stored if c.generation <= top[c.key]]
        )

    async def release_all(self) -> None:
        """Give up every key this writer holds."""
        await self.release(list(self._held))

    async def renew(self) -> None:
        """Push back the expiry of every claim this writer holds."""
        held = list(self._held.values())
        await self.store.renew_claims(self.corpus, held, time.time() + self.lease)

    @asynccontextmanager
    async def kept(self) -> AsyncIterator[Claims]:
        """Renew the claims in the background while inside; release them all on the way
        out, whatever happened (a writer that fails hands its files to the others)."""

        async def renew_forever() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                try:
                    await self.renew()
                except StoreError:
                    pass  # try again next round; a claim that lapses only costs duplicate work

        renewer = asyncio.create_task(renew_forever())
        try:
            yield self
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            try:
                await asyncio.shield(self.release_all())
            except StoreError:
                pass  # the claims lapse with their lease; the first error is the one to report
