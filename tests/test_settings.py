"""Configuration precedence: explicit beats environment beats the offline default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from maestro_lite import Settings
from maestro_lite.models import model_from_settings, parse_model_spec
from maestro_lite.models.local import LocalModel
from maestro_lite.models.openai import OpenAIModel


def test_offline_default() -> None:
    settings = Settings()
    assert settings.provider == "local"
    assert settings.resolved_model == "qwen2.5-coder-1.5b"
    assert isinstance(model_from_settings(settings), LocalModel)


def test_downloads_are_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAESTRO_ALLOW_DOWNLOAD")
    assert Settings().allow_download is False  # nothing on a default path reaches the index
    monkeypatch.setenv("MAESTRO_ALLOW_DOWNLOAD", "1")
    assert Settings().allow_download is True


def test_environment_beats_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAESTRO_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path))
    settings = Settings()
    assert settings.provider == "openai"
    assert settings.resolved_model == "gpt-4o-mini"
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-env"
    assert settings.home == tmp_path
    model = model_from_settings(settings)
    assert isinstance(model, OpenAIModel) and model.base_url == "http://127.0.0.1:9/v1"


def test_explicit_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAESTRO_PROVIDER", "openai")
    monkeypatch.setenv("MAESTRO_MODEL", "gpt-4o")
    settings = Settings(provider="local", model="qwen2.5-coder-0.5b")
    assert settings.provider == "local"
    assert settings.resolved_model == "qwen2.5-coder-0.5b"


def test_maestro_local_model_may_be_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAESTRO_LOCAL_MODEL", "/models/other.gguf")
    assert Settings().resolved_model == "/models/other.gguf"


def test_model_specs() -> None:
    base = Settings()
    assert parse_model_spec("openai:gpt-4.1", base).provider == "openai"
    assert parse_model_spec("openai:gpt-4.1", base).resolved_model == "gpt-4.1"
    assert parse_model_spec("local:/m/x.gguf", base).resolved_model == "/m/x.gguf"
    assert parse_model_spec("qwen2.5-coder-0.5b", base).provider == "local"


def test_settings_are_immutable_and_validated() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.provider = "openai"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Settings(provider="anthropic")  # type: ignore[arg-type]


def test_an_invalid_variable_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_lite import ConfigError

    monkeypatch.setenv("MAESTRO_N_CTX", "abc")
    monkeypatch.setenv("MAESTRO_PROVIDER", "anthropic")
    with pytest.raises(ConfigError) as error:
        Settings.from_env()
    message = str(error.value)
    assert "MAESTRO_N_CTX='abc': Input should be a valid integer" in message
    assert "MAESTRO_PROVIDER='anthropic': Input should be 'local' or 'openai'" in message
    # The library's own defaults (no settings given) read the environment the same way.
    from maestro_lite import Corpora, ResponseCache, SQLiteRunStore

    for default in (Corpora, ResponseCache.open, SQLiteRunStore.open):
        with pytest.raises(ConfigError, match="MAESTRO_N_CTX='abc'"):
            default()
    monkeypatch.delenv("MAESTRO_N_CTX")
    monkeypatch.delenv("MAESTRO_PROVIDER")
    assert Settings.from_env(n_ctx=1024).n_ctx == 1024


def test_structured_mode_and_fallback_come_from_settings(tmp_path: Path) -> None:
    from maestro_lite.models import FallbackModel

    remote = Settings(
        provider="openai",
        openai_api_key="sk-x",
        openai_base_url="http://127.0.0.1:9/v1",
        structured_mode="json_object",
    )
    model = model_from_settings(remote)
    assert isinstance(model, OpenAIModel) and model.structured_mode == "json_object"

    chain = model_from_settings(
        remote.model_copy(update={"fallback_model": "local:qwen2.5-coder-0.5b"})
    )
    assert isinstance(chain, FallbackModel)
    assert [m.name for m in chain.models] == ["openai:gpt-4o-mini", "local:qwen2.5-coder-0.5b"]

    elsewhere = model_from_settings(
        remote.model_copy(
            update={"fallback_model": "openai:backup", "fallback_base_url": "http://127.0.0.1:8/v1"}
        )
    )
    assert isinstance(elsewhere, FallbackModel)
    backup = elsewhere.models[1]
    assert isinstance(backup, OpenAIModel) and backup.base_url == "http://127.0.0.1:8/v1"
    assert backup.name == "openai:backup" and backup.structured_mode == "json_object"


def test_local_repacking_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from maestro_lite.models.local import LocalModel, cpu_has_amx

    monkeypatch.setenv("MAESTRO_LOCAL_MODEL", str(tmp_path / "any.gguf"))
    for value, expected in (("1", True), ("0", False), ("", not cpu_has_amx())):
        if value:
            monkeypatch.setenv("MAESTRO_LOCAL_REPACK", value)
        else:
            monkeypatch.delenv("MAESTRO_LOCAL_REPACK", raising=False)
        model = model_from_settings(Settings.from_env())
        assert isinstance(model, LocalModel)
        assert model.repack is expected, value
