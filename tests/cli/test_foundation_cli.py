"""`maestro doctor`, `maestro models ...` and error rendering, as a user runs them."""

from __future__ import annotations

import re

from maestro_lite.testing import OpenAICompatibleServer

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


def test_errors_are_one_actionable_line_not_a_traceback(maestro: Maestro) -> None:
    result = maestro("models", "pull", "no-such-model")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert re.match(r"error: unknown model 'no-such-model'; known: .* -> Pick a name", lines[0])


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
