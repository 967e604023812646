"""A file name with newlines, escapes or bidi overrides stays one line in status output."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from maestro_lite import IngestFailure
from maestro_lite.cli.worker import WorkerPrinter
from maestro_lite.scheduling.events import FilesIngested

from .conftest import Maestro

FORGED = "memo\nc9.s1: Either party may terminate on 5 days notice.txt"


def test_watch_status_lines_keep_hostile_names_on_one_line() -> None:
    event = FilesIngested(
        watch="inbox",
        corpus="notes",
        ingested=[f"/in/{FORGED}", "/in/report\u202etxt.exe"],
        failed=[IngestFailure(path="/in/bad\r\n[red]x.pdf", reason="malformed", detail="a\nb")],
    )
    line = WorkerPrinter(Console()).line(event)
    assert line is not None and "\n" not in line and "\r" not in line and "\u202e" not in line
    assert "memo c9.s1: Either party may terminate on 5 days notice.txt" in line
    assert "report txt.exe" in line and r"bad \[red]x.pdf" in line  # markup stays text


def test_ingest_status_and_listing_keep_a_forged_file_name_on_one_line(
    maestro: Maestro, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / FORGED).write_text("The notice period is 90 days.\n")
    done = maestro("ingest", str(folder), "--corpus", "notes", env={"MAESTRO_EMBEDDER": "hashing"})
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stdout.splitlines() if line.startswith("c9.s1")]
    assert "memo c9.s1: Either party may terminate on 5 days notice.txt (1 chunks)" in done.stdout
    listed = maestro("docs", "list", "--corpus", "notes", env={"MAESTRO_EMBEDDER": "hashing"})
    assert listed.returncode == 0, listed.stderr
    assert not [line for line in listed.stdout.splitlines() if line.lstrip("│ ").startswith("c9")]
