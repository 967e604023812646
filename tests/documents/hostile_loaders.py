"""Loaders that misbehave, for the parse worker's tests (importable by the child process)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from maestro_lite.documents.loaders import ParsedFile


class HangingLoader:
    """Never returns for files whose content is ``hang``; echoes the rest."""

    media_type = "text/plain"
    suffixes = (".hang",)
    isolated = True

    def parse(self, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
        while data == b"hang":
            time.sleep(0.05)
        return ParsedFile(pages=[data.decode()])


class CrashingLoader:
    """Kills its process, as a segfault in a native parser would."""

    media_type = "text/plain"
    suffixes = (".crash",)
    isolated = True

    def parse(self, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
        os._exit(70)


class GreedyLoader:
    """Allocates far more memory than the worker allows."""

    media_type = "text/plain"
    suffixes = (".greedy",)
    isolated = True

    def parse(self, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
        hoard = bytearray(8 * 1024**3)
        return ParsedFile(pages=[str(len(hoard))])


class RaisingLoader:
    """Runs in the ingesting process and fails with a bug, not a ``DocumentError``, on files
    whose content is ``boom``; echoes the rest."""

    media_type = "text/plain"
    suffixes = (".boom",)
    isolated = False

    def parse(self, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
        if data == b"boom":
            raise KeyError("/Root")
        return ParsedFile(pages=[data.decode()])
