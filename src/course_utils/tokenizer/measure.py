"""Measuring tokenizers side by side: token counts and bytes per token, for any kind of tokenizer.

>>> from course_utils.tokenizer import train
>>> tok = train("the cat sat on the mat " * 10, vocab_size=264)
>>> count_tokens(tok, "the cat") < len("the cat")
True

Taught in: lesson 01 (compression of our BPE, SmolLM2's and cl100k's vocabularies).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import DataError, InvalidOption
from .base import Tokenizer, check_text


def compression_ratio(tokenizer: Any, text: str) -> float:
    """UTF-8 bytes per token for ``text`` (higher = fewer tokens for the same text).

    ``tokenizer`` is anything with ``encode(text) -> ids``: our Tokenizer, a tiktoken Encoding, or
    a transformers tokenizer (called without special tokens).
    """
    n = count_tokens(tokenizer, text)
    if n == 0:
        raise DataError("the text has no tokens", fix="pass a non-empty text")
    return len(text.encode("utf-8")) / n


def count_tokens(tokenizer: Any, text: str) -> int:
    """Number of tokens ``tokenizer`` makes of ``text`` (no special tokens added)."""
    check_text(text)
    return len(encode_with(tokenizer, text))


def encode_with(tokenizer: Any, text: str) -> list[int]:
    """``tokenizer.encode(text)`` for our, tiktoken's and transformers' tokenizers alike."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.encode(text)
    if hasattr(tokenizer, "backend_tokenizer"):  # transformers: no BOS/EOS, special markers as text
        return list(tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True))
    if hasattr(tokenizer, "encode_ordinary"):  # tiktoken
        return list(tokenizer.encode_ordinary(text))
    if hasattr(tokenizer, "encode"):
        return list(tokenizer.encode(text))
    raise InvalidOption(f"{type(tokenizer).__name__} has no encode() method", fix="pass a Tokenizer, a tiktoken Encoding or a transformers tokenizer")


def iter_tokens(tokenizer: Tokenizer, text: str) -> Iterator[tuple[int, str]]:
    """(id, piece) for each token of ``text``: handy for showing how text was cut."""
    ids = tokenizer.encode(text)
    yield from zip(ids, tokenizer.pieces(ids), strict=True)
