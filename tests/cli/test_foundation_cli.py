"""`maestro doctor`, `maestro models ...` and error rendering, as a user runs them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from maestro_lite.models.local import cpu_has_amx
from maestro_lite.testing import OpenAICompatibleServer
from tests.retrieval_fixtures import free_port

from .conftest import Maestro

SMALL = "qwen2.5-coder-0.5b"


def _row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if name in line)


def test_models_list_tells_the_truth_before_and_after_a_pull(maestro: Maestro) -> None:
    before = maestro("models", "list")
    assert before.returncode == 0, before.stderr
    assert "missing" in _row(before.stdout, SMALL)
    assert "6/6" in _row(before.stdout, SMALL)  # its packages are installed: pull is offline

    pulled = maestro("models", "pull", SMALL)
    assert pulled.returncode == 0, pulled.stderr
    assert "verified" in pulled.stdout

    after = maestro("models", "list")
    assert "verified" in _row(after.stdout, SMALL)
    assert "missing" in _row(after.stdout, "qwen2.5-coder-1.5b")

    verify = maestro("models", "verify", SMALL)
    assert verify.returncode == 0 and "verified" in verify.stdout


def test_doctor_is_green_offline_when_the_model_is_pulled(maestro: Maestro) -> None:
    env = {"MAESTRO_LOCAL_MODEL": SMALL}
    missing = maestro("doctor", env=env)
    assert missing.returncode == 1
    assert f"maestro models pull {SMALL}" in missing.stdout

    assert maestro("models", "pull", SMALL).returncode == 0
    ok = maestro("doctor", env=env)
    assert ok.returncode == 0, ok.stdout
    assert "sha256 verified now" in ok.stdout
    assert "all good" in ok.stdout
    # Where llama.cpp's AMX kernels would crash, doctor says the model loads without them.
    assert ("repacking off" in _row(ok.stdout, "local model")) == cpu_has_amx()
    for value, state in (("1", "on"), ("0", "off")):  # the user's choice, either way
        chosen = maestro("doctor", env={**env, "MAESTRO_LOCAL_REPACK": value})
        row = _row(chosen.stdout, "local model")
        assert f"repacking {state} (MAESTRO_LOCAL_REPACK)" in row, chosen.stdout


def test_doctor_checks_an_openai_compatible_endpoint(maestro: Maestro) -> None:
    with OpenAICompatibleServer(lambda body: "hi", model_ids=["served-model"]) as server:
        env = {
            "MAESTRO_PROVIDER": "openai",
            "OPENAI_BASE_URL": server.base_url,
            "MAESTRO_MODEL": "served-model",
        }
        result = maestro("doctor", env=env)
        url = server.base_url
    assert result.returncode == 0, result.stdout
    assert "answers" in result.stdout and "'served-model' listed" in result.stdout

    dead = maestro("doctor", env={**env, "OPENAI_BASE_URL": url})  # server now stopped
    assert dead.returncode == 1
    assert "cannot reach" in dead.stdout


def test_doctor_checks_the_embedder_and_the_embedded_store(
    maestro: Maestro, tmp_path: Path
) -> None:
    ok = maestro("doctor")
    embeddings, store = _row(ok.stdout, "embeddings"), _row(ok.stdout, "vector store")
    assert embeddings.startswith("ok ") and "local:all-MiniLM-L6-v2, offline" in embeddings
    assert "model files complete" in embeddings and "not loaded" in embeddings
    chroma = tmp_path / "home" / "chroma"
    assert store.startswith("ok ") and f"embedded Chroma at {chroma} opens" in store

    no_key = maestro("doctor", env={"MAESTRO_EMBEDDER": "openai:text-embedding-3-small"})
    assert no_key.returncode == 1
    assert _row(no_key.stdout, "embeddings").startswith("!! ")
    assert "OPENAI_API_KEY" in _row(no_key.stdout, "embeddings")
    served = maestro(
        "doctor",
        env={
            "MAESTRO_EMBEDDER": "openai:nomic-embed",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        },
    )
    assert _row(served.stdout, "embeddings").startswith("ok ")
    assert "configured" in _row(served.stdout, "embeddings")
    unknown = maestro("doctor", env={"MAESTRO_EMBEDDER": "word2vec"})
    assert "unknown embedder 'word2vec'" in _row(unknown.stdout, "embeddings")

    home = tmp_path / "locked-home"
    home.mkdir()
    (home / "chroma").write_text("a file where the store's folder should be")
    blocked = maestro("doctor", env={"MAESTRO_HOME": str(home)})
    assert blocked.returncode == 1
    row = _row(blocked.stdout, "vector store")
    assert row.startswith("!! ") and f"embedded Chroma at {home / 'chroma'} is not writable" in row


def test_doctor_checks_a_chroma_server(maestro: Maestro, chroma_server: str) -> None:
    ok = maestro("doctor", env={"MAESTRO_CHROMA_URL": chroma_server})
    assert f"ok vector store       Chroma server at {chroma_server} answers" in ok.stdout
    dead = f"http://127.0.0.1:{free_port()}"
    down = maestro("doctor", env={"MAESTRO_CHROMA_URL": dead})
    assert down.returncode == 1
    assert f"cannot reach the Chroma server at {dead}" in _row(down.stdout, "vector store")


@pytest.mark.embeddings
def test_doctor_embed_loads_the_local_embedder(maestro: Maestro) -> None:
    result = maestro("doctor", "--embed")
    row = _row(result.stdout, "embeddings")
    assert row.startswith("ok ") and "loaded and embedded a sentence (384 dimensions" in row


def test_errors_are_one_actionable_line_not_a_traceback(maestro: Maestro) -> None:
    result = maestro("models", "pull", "no-such-model")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert re.match(r"error: unknown model 'no-such-model'; known: .* -> Pick a name", lines[0])


def test_bad_settings_and_an_unwritable_home_are_one_line_each(
    maestro: Maestro, tmp_path: Path
) -> None:
    bad = maestro("doctor", env={"MAESTRO_N_CTX": "abc"})
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "error: invalid setting: MAESTRO_N_CTX='abc': Input should be a valid integer, unable "
        "to parse string as an integer -> Fix or unset the variable (`maestro doctor` shows "
        "the settings in use)."
    ]
    (tmp_path / "a-file").write_text("not a folder")
    blocked = maestro("models", "pull", SMALL, env={"MAESTRO_HOME": str(tmp_path / "a-file")})
    assert blocked.returncode == 2 and "Traceback" not in blocked.stderr
    errors = [line for line in blocked.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, blocked.stderr  # refused before anything is written
    assert f"MAESTRO_HOME='{tmp_path / 'a-file'}': is a file, not a folder" in errors[0]

    (tmp_path / "bad.gguf").write_bytes(b"not a model")
    (tmp_path / "note.txt").write_text("A note.")
    env = {"MAESTRO_EMBEDDER": "hashing", "MAESTRO_LOCAL_MODEL": str(tmp_path / "bad.gguf")}
    assert maestro("ingest", str(tmp_path / "note.txt"), "-c", "notes", env=env).returncode == 0
    wrong = maestro("run", "hello", "--corpus", "notes", env=env)
    assert "Traceback" not in wrong.stderr
    assert "is not a GGUF file (bad magic bytes) -> Point MAESTRO_LOCAL_MODEL" in wrong.stderr


def test_missing_api_key_is_explained(maestro: Maestro) -> None:
    result = maestro("demo", "--model", "openai:gpt-4o-mini")
    assert result.returncode == 2  # a usage error
    assert "Traceback" not in result.stderr
    assert "OPENAI_API_KEY" in result.stderr


def test_help_lists_the_commands(maestro: Maestro) -> None:
    result = maestro("--help")
    assert result.returncode == 0
    for command in ("doctor", "models", "demo"):
        assert command in result.stdout


def test_doctor_checks_the_shared_database(maestro: Maestro, database_url: str) -> None:
    ok = maestro("doctor", env={"MAESTRO_DATABASE_URL": database_url})
    row = _row(ok.stdout, "shared database")
    assert row.startswith("ok ") and "answers (runs, job queue, schedules, limits)" in row
    assert database_url.rpartition("@")[2] in row

    gone = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none"
    dead = maestro("doctor", env={"MAESTRO_DATABASE_URL": gone})
    assert dead.returncode == 1
    row = _row(dead.stdout, "shared database")
    assert row.startswith("!! ") and "secret" not in dead.stdout + dead.stderr
