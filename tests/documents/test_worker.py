"""The guarded parse process: timeouts, crashes and memory limits end one file, not the batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_lite.documents._worker import ParseWorker
from maestro_lite.documents.loaders import PdfLoader
from maestro_lite.errors import DocumentError
from tests.documents.hostile_loaders import CrashingLoader, GreedyLoader, HangingLoader
from tests.pdfs import pdf_bytes


def _reason(worker: ParseWorker, loader: object, data: bytes, name: str) -> str:
    with pytest.raises(DocumentError) as caught:
        worker.parse(loader, data, path=Path(name))  # type: ignore[arg-type]
    assert name in str(caught.value)
    return caught.value.reason


def test_parses_in_the_child_and_reports_loader_errors() -> None:
    with ParseWorker(timeout=60) as worker:
        parsed = worker.parse(PdfLoader(), pdf_bytes(["In the child."]), path=Path("a.pdf"))
        assert "In the child." in parsed.pages[0]
        assert _reason(worker, PdfLoader(), b"%PDF-1.4 broken", "b.pdf") == "malformed"
        locked = pdf_bytes(["x"], password="pw")
        assert _reason(worker, PdfLoader(), locked, "c.pdf") == "encrypted"


def test_a_hanging_file_times_out_and_the_next_file_still_parses() -> None:
    with ParseWorker(timeout=1.0) as worker:
        assert _reason(worker, HangingLoader(), b"hang", "stuck.hang") == "timeout"
        assert worker.parse(HangingLoader(), b"fine", path=Path("ok.hang")).pages == ["fine"]


def test_a_crash_is_reported_and_the_worker_restarts() -> None:
    with ParseWorker(timeout=60) as worker:
        assert _reason(worker, CrashingLoader(), b"x", "boom.crash") == "crashed"
        assert worker.parse(HangingLoader(), b"after", path=Path("ok.hang")).pages == ["after"]


def test_memory_is_bounded() -> None:
    with ParseWorker(timeout=60, memory_mb=1024) as worker:
        assert _reason(worker, GreedyLoader(), b"x", "huge.greedy") == "too_large"
        assert worker.parse(HangingLoader(), b"still", path=Path("ok.hang")).pages == ["still"]
