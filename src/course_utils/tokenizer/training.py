"""Training a byte-level BPE: learn merges from a text, most frequent adjacent pair first.

Only the chunks that contained the merged pair are recounted after each merge, which makes a few
hundred merges on the course corpus take about a second (the lab's version recounts everything).

Taught in: lesson 01 (lab 01 has the learner write the same loop and compares the merges).
"""

from __future__ import annotations

import numbers
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import pairwise

from ..errors import DataError, InvalidOption
from .base import GPT4_SPLIT_PATTERN, Pair, Tokenizer, check_text, merge, split_text


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
    check_text(text)
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
