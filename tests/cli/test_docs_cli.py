"""`maestro ingest`, `maestro docs ...` and `maestro search`, as a user runs them."""

from __future__ import annotations

from pathlib import Path

from tests.pdfs import write_pdf

from .conftest import Maestro

HASHING = {"MAESTRO_EMBEDDER": "hashing"}  # the fast fake: no torch in these subprocesses


def _docs(root: Path) -> Path:
    write_pdf(root / "tides.pdf", ["Intro page.", "The moon raises ocean tides twice daily."])
    write_pdf(root / "locked.pdf", ["Locked away"], password="p=w")  # "=" in the password
    (root / "bread.md").write_text("# Bread\n\nYeast makes the dough rise.")
    (root / "empty.txt").write_text("")
    (root / ".draft.md").write_text("# Draft\n\nNot for the corpus.")
    return root


def test_ingest_list_search_remove(maestro: Maestro, tmp_path: Path) -> None:
    root = _docs(tmp_path / "docs")
    first = maestro("ingest", str(root), "--corpus", "notes", env=HASHING)
    assert first.returncode == 1, first.stderr  # two files failed; the others went in
    out = first.stdout
    assert "ingested  " + str(root / "tides.pdf") in out
    assert f"failed    {root / 'locked.pdf'}: encrypted" in out
    assert f"failed    {root / 'empty.txt'}: empty" in out
    assert f"skipped   {root / '.draft.md'}: hidden file" in out
    assert "notes: 2 ingested, 0 updated, 0 unchanged, 0 without text, 2 failed, 1 skipped" in out

    unlocked = maestro(
        "ingest",
        str(root / "locked.pdf"),
        "-c",
        "notes",
        "--file-password",
        f"{root / 'locked.pdf'}=p=w",
        env=HASHING,
    )
    assert unlocked.returncode == 0 and "1 ingested" in unlocked.stdout

    again = maestro("ingest", str(root / "tides.pdf"), "-c", "notes", env=HASHING)
    assert again.returncode == 0 and "1 unchanged" in again.stdout

    listed = maestro("docs", "list", "--corpus", "notes", env=HASHING)
    assert listed.returncode == 0, listed.stderr
    assert "3 document(s)" in listed.stdout
    tides_row = next(line for line in listed.stdout.splitlines() if "tides" in line)
    doc_id = tides_row.split()[1]

    found = maestro("search", "ocean tides moon", "-c", "notes", "-k", "2", env=HASHING)
    assert found.returncode == 0, found.stderr
    first_hit = found.stdout.splitlines()[0]
    assert first_hit.startswith("1. tides p.2 [0:") and doc_id in first_hit and "score" in first_hit
    assert "The moon raises ocean tides twice daily." in found.stdout

    lexical = maestro("search", "yeast", "-c", "notes", "--mode", "lexical", env=HASHING)
    assert lexical.stdout.startswith("1. Bread p.1")

    # Hybrid fusion: convex by default (the best hit of both lists scores 1), RRF by option
    # or MAESTRO_FUSION (first in both lists: 1/61 + 1/61).
    query = ("search", "yeast dough rise", "-c", "notes")
    convex = maestro(*query, env=HASHING)
    assert convex.stdout.startswith("1. Bread p.1") and "score 1.000" in convex.stdout
    rrf = maestro(*query, "--fusion", "rrf", env=HASHING)
    assert rrf.stdout.startswith("1. Bread p.1") and "score 0.033" in rrf.stdout
    by_env = maestro(*query, env={**HASHING, "MAESTRO_FUSION": "rrf"})
    assert by_env.stdout == rrf.stdout
    assert maestro(
        *query, "--fusion", "convex", env={**HASHING, "MAESTRO_FUSION": "rrf"}
    ).stdout == (convex.stdout)

    removed = maestro("docs", "remove", doc_id[:8], "-c", "notes", env=HASHING)
    assert removed.returncode == 0 and f"removed {doc_id}" in removed.stdout
    gone = maestro("search", "ocean tides moon", "-c", "notes", "--mode", "lexical", env=HASHING)
    assert "tides p." not in gone.stdout

    corpora = maestro("docs", "corpora", env=HASHING)
    assert corpora.stdout.split() == ["notes"]


def test_ingest_lists_deleted_files_and_prunes_them(maestro: Maestro, tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "old.txt").write_text("The 2023 terms: notice is 30 days.")
    (root / "new.txt").write_text("The 2024 terms: notice is 60 days.")
    assert maestro("ingest", str(root), "-c", "terms", env=HASHING).returncode == 0
    (root / "old.txt").unlink()

    kept = maestro("ingest", str(root), "-c", "terms", env=HASHING)
    assert kept.returncode == 0, kept.stderr
    assert f"gone      {root / 'old.txt'}: deleted from disk, still in the corpus" in kept.stdout
    assert "1 unchanged, 0 without text, 0 failed, 1 gone from disk (kept)" in kept.stdout
    assert "30 days" in maestro("search", "notice", "-c", "terms", env=HASHING).stdout

    pruned = maestro("ingest", str(root), "-c", "terms", "--prune", env=HASHING)
    assert pruned.returncode == 0, pruned.stderr
    assert f"pruned    {root / 'old.txt'}" in pruned.stdout and "(pruned)" in pruned.stdout
    found = maestro("search", "notice", "-c", "terms", env=HASHING).stdout
    assert "60 days" in found and "30 days" not in found


def test_errors_are_one_line(maestro: Maestro, tmp_path: Path) -> None:
    missing = maestro("search", "anything", "--corpus", "nope", env=HASHING)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: no corpus named 'nope'")
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "Traceback" not in missing.stderr

    (tmp_path / "a.txt").write_text("alpha")
    assert maestro("ingest", str(tmp_path / "a.txt"), env=HASHING).returncode == 0
    mismatch = maestro("search", "alpha", "--mode", "dense", env={"MAESTRO_EMBEDDER": "hashing:64"})
    assert mismatch.returncode == 2
    assert "was embedded with 'hashing:256', not 'hashing:64'" in mismatch.stderr

    bad_mode = maestro("search", "alpha", "--mode", "fuzzy", env=HASHING)
    assert bad_mode.returncode == 2 and "unknown mode 'fuzzy'" in bad_mode.stderr
    bad_fusion = maestro("search", "alpha", "--fusion", "mean", env=HASHING)
    assert bad_fusion.returncode == 2 and "unknown fusion 'mean'" in bad_fusion.stderr


def test_list_shows_every_file_holding_a_document(maestro: Maestro, tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (root / name).write_text("Identical notes.")
    (root / "e.txt").write_text("Other notes.")
    ingested = maestro("ingest", str(root), "-c", "twins", env=HASHING)
    assert ingested.returncode == 0, ingested.stderr
    assert "2 ingested, 0 updated, 3 unchanged" in ingested.stdout

    listed = maestro("docs", "list", "-c", "twins", env=HASHING)
    assert listed.returncode == 0, listed.stderr
    assert "2 document(s)" in listed.stdout
    assert "also b.txt, c.txt +1 more" in listed.stdout  # named from a.txt's folder
    assert "also" not in next(line for line in listed.stdout.splitlines() if "e.txt" in line)
