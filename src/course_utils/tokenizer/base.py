"""The building blocks of byte-level BPE and the :class:`Tokenizer` that encodes and decodes with them.

Text -> UTF-8 bytes (:func:`text_to_bytes`) -> chunks (:func:`split_text`, a regex) -> ids: inside
each chunk the learned merges are replayed, lowest rank first (:meth:`Tokenizer.encode_chunk`).
:func:`get_stats` and :func:`merge` are the two operations both training and encoding are made of.
A tokenizer is nothing but its merges, its 256 byte ids, its split pattern and its special tokens:

>>> tok = Tokenizer({(104, 105): 256})          # one merge: "h" "i" -> 256
>>> tok.encode("hihi"), tok.decode([256])
([256, 256], 'hi')

Taught in: lesson 01 (and lab 01, whose checks compare the learner's functions with these).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

import regex

from ..errors import DataError, InvalidOption

# The split patterns: cut text into chunks before BPE (merges never cross chunk boundaries).
# GPT-2's (also the "ByteLevel" pre-tokenizer of Hugging Face tokenizers, used by SmolLM2).
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# cl100k_base's (GPT-4), as in tiktoken: case-insensitive contractions, numbers in groups of at
# most three digits, and newlines kept apart from other whitespace.
GPT4_SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""

Pair = tuple[int, int]


# ----------------------------------------------------------------------------- the building blocks
def text_to_bytes(text: str) -> list[int]:
    """The UTF-8 bytes of ``text`` as ints 0..255: the starting ids of byte-level BPE.

    >>> text_to_bytes("hé!")
    [104, 195, 169, 33]
    """
    check_text(text)
    return list(text.encode("utf-8"))


def get_stats(ids: Sequence[int], counts: dict[Pair, int] | None = None) -> dict[Pair, int]:
    """Count adjacent pairs: ``[1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}``.

    Pass ``counts`` to add to an existing count (one call per chunk of text).

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([5, 5, 5], (5, 5), 6)   # non-overlapping: the leftmost pair wins
    [6, 5]
    """
    out: list[int] = []
    i, n = 0, len(ids)
    first, second = pair
    while i < n:
        if i + 1 < n and ids[i] == first and ids[i + 1] == second:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def split_text(text: str, pattern: str = GPT4_SPLIT_PATTERN) -> list[str]:
    """Cut ``text`` into the chunks BPE works on.

    >>> split_text("Hello world, it's 2024!")
    ['Hello', ' world', ',', ' it', "'s", ' ', '202', '4', '!']
    """
    check_text(text)
    return _compile(pattern).findall(text)


@functools.lru_cache(maxsize=16)
def _compile(pattern: str) -> regex.Pattern:
    if not isinstance(pattern, str) or not pattern:
        raise InvalidOption(f"pattern must be a non-empty regex string, got {pattern!r}", fix="use GPT4_SPLIT_PATTERN or GPT2_SPLIT_PATTERN")
    try:
        return regex.compile(pattern)
    except regex.error as err:
        raise InvalidOption(f"the split pattern is not a valid regex ({err})", fix="check the pattern, or use GPT4_SPLIT_PATTERN") from None


def check_text(text: Any) -> None:
    if not isinstance(text, str):
        raise InvalidOption(f"text must be a str, got {type(text).__name__}", fix="pass a string (decode bytes first with .decode('utf-8'))")


# ----------------------------------------------------------------------------- the tokenizer
class Tokenizer:
    """A byte-level BPE: 256 byte tokens, an ordered list of merges, a split pattern, special tokens.

    ``merges`` maps a pair of ids to the id it becomes, in priority order (the first one was learned
    first and is applied first). ``byte_ids[b]`` is the id of the single byte ``b``: 0..255 for a
    tokenizer trained here, something else for real tokenizers (SmolLM2 puts 17 special tokens
    first, cl100k shuffles the bytes). ``None`` marks a byte the vocabulary lacks: it is dropped
    when encoding, as Hugging Face tokenizers do (SmolLM2 has no token for 21 byte values that
    hardly occur, such as 0x04 and the bytes UTF-8 never uses). ``split_digits`` cuts every digit apart before the pattern
    runs (the ``Digits`` pre-tokenizer of Hugging Face tokenizers).
    """

    def __init__(
        self,
        merges: Mapping[Pair, int] | Iterable[tuple[Pair, int]],
        byte_ids: Sequence[int | None] | None = None,
        pattern: str = GPT4_SPLIT_PATTERN,
        special_tokens: Mapping[str, int] | None = None,
        name: str = "bpe",
        split_digits: bool = False,
    ) -> None:
        self.merges: dict[Pair, int] = dict(merges)
        self.byte_ids = list(range(256)) if byte_ids is None else [None if i is None else int(i) for i in byte_ids]
        if len(self.byte_ids) != 256:
            raise DataError(f"byte_ids must have 256 entries, got {len(self.byte_ids)}", fix="give one id per byte value 0..255")
        self.pattern = pattern
        self._regex = _compile(pattern)
        self.special_tokens = dict(special_tokens or {})
        self.name = name
        self.split_digits = split_digits
        # pair -> (rank, new id): the lower the rank, the earlier the merge is applied
        self._ranks = {pair: (rank, new_id) for rank, (pair, new_id) in enumerate(self.merges.items())}
        self.vocab = self._build_vocab()
        self._special_regex = _special_regex(self.special_tokens)
        self._cache: dict[bytes, list[int]] = {}

    def _build_vocab(self) -> dict[int, bytes]:
        vocab = {token_id: bytes([b]) for b, token_id in enumerate(self.byte_ids) if token_id is not None}
        for (a, b), new_id in self.merges.items():
            if a not in vocab or b not in vocab:
                raise DataError(f"merge ({a}, {b}) -> {new_id} uses an id that no earlier merge made", fix="give the merges in the order they were learned")
            vocab[new_id] = vocab[a] + vocab[b]
        for text, token_id in self.special_tokens.items():
            vocab[token_id] = text.encode("utf-8")
        return vocab

    # -- sizes
    @property
    def vocab_size(self) -> int:
        """Number of distinct ids: bytes + merges + special tokens."""
        return len(self.vocab)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"<Tokenizer {self.name!r}: {self.vocab_size:,} tokens ({len(self.merges):,} merges, {len(self.special_tokens)} special)>"

    # -- encoding
    def chunks(self, text: str) -> list[str]:
        """The pre-tokenized chunks of ``text`` (merges never cross their boundaries)."""
        check_text(text)
        if not self.split_digits:
            return self._regex.findall(text)
        out: list[str] = []
        for piece in regex.split(r"(\p{N})", text):  # "Digits(individual_digits=True)"
            if len(piece) == 1 and regex.match(r"\p{N}", piece):
                out.append(piece)
            elif piece:
                out.extend(self._regex.findall(piece))
        return out

    def encode_chunk(self, chunk: bytes) -> list[int]:
        """BPE on one chunk: apply the lowest-ranked merge present until none applies."""
        cached = self._cache.get(chunk)
        if cached is not None:
            return list(cached)
        ids = [self.byte_ids[b] for b in chunk]
        if None in ids:  # bytes without a token are dropped (see the class docstring)
            ids = [i for i in ids if i is not None]
        ranks = self._ranks
        while len(ids) >= 2:
            # the adjacent pair that was merged earliest in training (unknown pairs rank last)
            pair = min(pairwise(ids), key=lambda p: ranks.get(p, _NO_MERGE)[0])
            if pair not in ranks:
                break
            ids = merge(ids, pair, ranks[pair][1])
        if len(self._cache) < 200_000:  # real text repeats words: remember each chunk's ids
            self._cache[chunk] = ids
        return list(ids)

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text``, treating special-token markers like ``<|endoftext|>`` as plain text."""
        ids: list[int] = []
        for chunk in self.chunks(text):
            ids.extend(self.encode_chunk(chunk.encode("utf-8")))
        return ids

    def encode(self, text: str, allowed_special: str | Collection[str] = "none") -> list[int]:
        """Token ids for ``text``.

        ``allowed_special``: "none" (default: a typed ``<|im_start|>`` is just text, as in a user's
        message), "all" (every special token is recognised, as in a chat template), or a set of
        special-token strings to recognise.
        """
        check_text(text)
        special = self._allowed(allowed_special)
        if not special:
            return self.encode_ordinary(text)
        pattern = _special_regex({s: self.special_tokens[s] for s in special})
        ids: list[int] = []
        for i, part in enumerate(pattern.split(text)):
            if i % 2:  # odd parts are the special tokens themselves (captured by the split)
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def _allowed(self, allowed_special: str | Collection[str]) -> set[str]:
        if allowed_special == "none":
            return set()
        if allowed_special == "all":
            return set(self.special_tokens)
        if isinstance(allowed_special, str) or not isinstance(allowed_special, Collection):
            raise InvalidOption(f"allowed_special={allowed_special!r} is not understood", fix='use "none", "all" or a set of special-token strings')
        unknown = sorted(set(allowed_special) - set(self.special_tokens))
        if unknown:
            raise InvalidOption(f"{unknown} are not special tokens of {self.name}", fix=f"use some of {sorted(self.special_tokens)[:8]}")
        return set(allowed_special)

    # -- decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes of ``ids`` (a single token may be part of a UTF-8 character)."""
        ids = list(ids)
        try:
            return b"".join(self.vocab[int(i)] for i in ids)
        except (KeyError, TypeError, ValueError):
            bad = [i for i in ids if not isinstance(i, numbers.Integral) or int(i) not in self.vocab]
            raise InvalidOption(f"unknown token id(s) {bad[:5]} for {self.name} ({self.vocab_size} tokens)", fix="decode only ids that this tokenizer produced") from None

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Text for ``ids``. Incomplete UTF-8 (half an emoji) becomes U+FFFD with errors="replace"."""
        return self.decode_bytes(list(ids)).decode("utf-8", errors=errors)

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """Each token as readable text (bytes that are not whole characters shown as ``<xx>``)."""
        out = []
        for i in ids:
            raw = self.decode_bytes([i])
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append("".join(f"<{b:02x}>" for b in raw))
        return out

    def special_id(self, text: str) -> int:
        """The id of a special token such as ``"<|im_start|>"``."""
        if text not in self.special_tokens:
            raise InvalidOption(f"{text!r} is not a special token of {self.name}", fix=f"use one of {sorted(self.special_tokens)[:8]}")
        return self.special_tokens[text]


_NO_MERGE = (float("inf"), -1)


def _special_regex(special_tokens: Mapping[str, int]) -> regex.Pattern:
    # longest first, so "<|im_start|>" is not cut short by a special token that is its prefix
    names = sorted(special_tokens, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(s) for s in names) + ")") if names else regex.compile("(?!)")
