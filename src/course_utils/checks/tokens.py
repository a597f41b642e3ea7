"""Checks for lab 01 (tokens): each runs the learner's function against ``course_utils.tokenizer``.

>>> check_get_stats(lambda ids: {})
Verdict(name='count pairs', status='failed', message='count_pairs([1, 2, 3, 1, 2]) returned {} but should be {(1, 2): 2, (2, 3): 1, (3, 1): 1}. Hint: loop over neighbours with zip(ids, ids[1:]) or itertools.pairwise(ids)')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import tokenizer as bpe
from . import Verdict, run_check

BYTE_CASES = ["hello", "héllo wörld", "日本語", "I ❤️ 🤖", "", "tab\tnew\nline"]
PAIR_CASES = [[1, 2, 3, 1, 2], [5, 5, 5, 5], [7], [], [104, 101, 108, 108, 111]]
MERGE_CASES = [
    ([1, 2, 3, 1, 2], (1, 2), 99),
    ([5, 5, 5], (5, 5), 6),  # overlapping: left to right, no double use
    ([5, 5, 5, 5], (5, 5), 6),
    ([1, 2], (2, 1), 9),  # the pair does not occur
    ([3, 1, 2], (1, 2), 256),  # the pair at the very end
    ([], (1, 2), 256),
]
TRAIN_TEXT_CHARS = 4000  # the start of the course corpus: small enough for a plain-Python loop
TRAIN_MERGES = 20
COUNT_PROMPT = (
    "Übersetze bitte ins Englische: »Der Kühlschrank ist leer.«\n"
    "def total(prices):\n    return sum(p * 1.19 for p in prices)  # 19 % VAT\n"
)


# ----------------------------------------------------------------------------- exercise 1
def check_byte_encoding(fn: Callable[[str], list[int]]) -> Verdict:
    """``fn(text)`` must return the UTF-8 bytes of ``text`` as a list of ints."""

    def test(fn: Callable[[str], Any]) -> bool | str:
        for text in BYTE_CASES:
            got, want = fn(text), bpe.text_to_bytes(text)
            if got is None:
                return "your function returned None: did you forget `return`?"
            if isinstance(got, bytes | bytearray):
                return f"to_bytes({text!r}) returned a bytes object; make it a list of ints with list(...)"
            got = list(got)
            if got != want:
                if got == [ord(c) for c in text]:
                    return f"to_bytes({text!r}) gave code points (ord), not UTF-8 bytes: {got} instead of {want}"
                return f"to_bytes({text!r}) returned {got[:12]} but should be {want[:12]}"
        return True

    return run_check("text to bytes", test, fn, hint="text.encode('utf-8') gives bytes; list(...) of it gives ints 0..255")


# ----------------------------------------------------------------------------- exercise 2
def check_get_stats(fn: Callable[[list[int]], dict]) -> Verdict:
    """``fn(ids)`` must count each adjacent pair: ``{(a, b): count}``."""

    def test(fn: Callable[[list[int]], Any]) -> bool | str:
        for ids in PAIR_CASES:
            got, want = fn(list(ids)), bpe.get_stats(ids)
            if got is None:
                return "your function returned None: did you forget `return`?"
            if any(not isinstance(k, tuple) for k in dict(got)):
                return f"count_pairs({ids}) has keys {list(dict(got))[:3]}; use tuples (a, b) as keys"
            if dict(got) != want:
                return f"count_pairs({ids}) returned {dict(got)} but should be {want}"
        return True

    return run_check("count pairs", test, fn, hint="loop over neighbours with zip(ids, ids[1:]) or itertools.pairwise(ids)")


# ----------------------------------------------------------------------------- exercise 3
def check_merge(fn: Callable[[list[int], tuple[int, int], int], list[int]]) -> Verdict:
    """``fn(ids, pair, new_id)`` must replace each occurrence of ``pair``, left to right."""

    def test(fn: Callable[..., Any]) -> bool | str:
        for ids, pair, new_id in MERGE_CASES:
            original = list(ids)
            got, want = fn(original, pair, new_id), bpe.merge(ids, pair, new_id)
            if got is None:
                return "your function returned None: did you forget `return`?"
            if original != ids:
                return f"merge_pair changed its input list {ids} to {original}; build a new list instead"
            if list(got) != want:
                extra = " (after merging a pair, skip both of its ids: step by 2)" if pair[0] == pair[1] else ""
                return f"merge_pair({ids}, {pair}, {new_id}) returned {list(got)} but should be {want}{extra}"
        return True

    return run_check("merge a pair", test, fn, hint="walk with an index i; when ids[i], ids[i+1] == pair append new_id and i += 2, else append ids[i] and i += 1")


# ----------------------------------------------------------------------------- exercise 4
def check_train(fn: Callable[[str, int], dict], text: str | None = None, num_merges: int = TRAIN_MERGES) -> Verdict:
    """``fn(text, num_merges)`` must return merges ``{(a, b): new_id}`` learned on regex chunks.

    The check replays the merges on ``text`` (the first 4,000 characters of the course corpus by
    default): each must merge *a* most frequent pair at its step. Ties (two pairs equally frequent)
    may be broken either way, so the merges can differ from ``course_utils.tokenizer.train`` only
    where the counts tie.
    """
    text = bpe.corpus()[:TRAIN_TEXT_CHARS] if text is None else text
    answer: dict = {}

    def test(fn: Callable[..., Any]) -> bool | str:
        merges = fn(text, num_merges)
        if merges is None:
            return "your function returned None: did you forget `return`?"
        merges = answer["merges"] = dict(merges)
        if len(merges) != num_merges:
            return f"train_bpe(text, {num_merges}) returned {len(merges)} merges instead of {num_merges}"
        want_ids = list(range(256, 256 + num_merges))
        if list(merges.values()) != want_ids:
            return f"the new ids should be 256, 257, ... in order; got {list(merges.values())[:5]}..."
        chunks = [list(c.encode("utf-8")) for c in bpe.split_text(text)]
        for step, (pair, new_id) in enumerate(merges.items()):
            stats: dict = {}
            for ids in chunks:
                bpe.get_stats(ids, stats)
            best = max(stats.values())
            if not stats.get(pair):
                return (f"merge {step + 1} is {pair}, a pair that never occurs inside one chunk; "
                        "split the text with split_text(text) first and count pairs within each chunk")
            if stats[pair] != best:
                top = max(stats, key=stats.get)
                return (f"merge {step + 1} is {pair} (seen {stats.get(pair, 0)} times) but {top} is seen {best} times; "
                        "count pairs inside each chunk of split_text(text) and pick the most frequent")
            chunks = [bpe.merge(ids, pair, new_id) for ids in chunks]
        return True

    verdict = run_check("train BPE", test, fn, hint="repeat num_merges times: count pairs over all chunks, take the max, merge it in every chunk")
    if verdict.passed:  # say how it compares with the course's tokenizer (ties may differ)
        reference = list(bpe.train(text, 256 + num_merges).merges)
        same = sum(a == b for a, b in zip(answer["merges"], reference, strict=True))
        note = (f"your {num_merges} merges are exactly those of course_utils.tokenizer.train" if same == num_merges
                else f"{same} of your {num_merges} merges are identical to course_utils.tokenizer.train's; the others "
                "differ only because equally frequent pairs may be taken in either order")
        verdict = Verdict(verdict.name, verdict.status, note)
    return verdict


# ----------------------------------------------------------------------------- exercise 5
def check_token_count(fn: Callable[[str], dict], prompt: str = COUNT_PROMPT) -> Verdict:
    """``fn(prompt)`` must return ``{"SmolLM2": n, "cl100k_base": m}`` token counts (no special tokens)."""

    def test(fn: Callable[[str], Any]) -> bool | str:
        got = fn(prompt)
        if got is None:
            return "your function returned None: did you forget `return`?"
        got = dict(got)
        want = {"SmolLM2": len(bpe.smollm2().encode(prompt)), "cl100k_base": len(bpe.cl100k_tiktoken().encode_ordinary(prompt))}
        if set(got) != set(want):
            return f"return a dict with the keys {sorted(want)}; got keys {sorted(got)}"
        for name, n in want.items():
            if got[name] == n:
                continue
            if got[name] == len(prompt):
                return f"{name}: {got[name]} is the number of characters, not tokens"
            if got[name] == len(prompt.encode("utf-8")):
                return f"{name}: {got[name]} is the number of UTF-8 bytes, not tokens"
            if got[name] == len(prompt.split()):
                return f"{name}: {got[name]} is the number of words, not tokens"
            if isinstance(got[name], list | tuple):
                return f"{name}: return the number of tokens (len of the ids), not the ids"
            return f"{name}: {got[name]} tokens, but the tokenizer makes {n} of this prompt (no special tokens)"
        return True

    return run_check("count tokens", test, fn, hint="len(smollm2().encode(text)) and len(cl100k_tiktoken().encode(text))")
