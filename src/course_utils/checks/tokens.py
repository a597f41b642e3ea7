"""Checks for lab 01 (tokens): each runs the learner's function against ``course_utils.tokenizer``.

Every check calls the learner's function through :func:`~course_utils.checks.call_unchanged` (a
function that changes its input list or dict fails), on inputs chosen to show the usual mistakes:
code points instead of UTF-8, pairs counted once or without their order, an ``ids`` list turned
into a string (``"11 2"`` contains ``"1 2"``), overlapping merges used twice, a number of merges that
only works at the lab's value, merges that cross chunk boundaries, merges applied in the wrong
order. The last exercise builds a tokenizer and measures it on held-out sections of the corpus that
the check picks itself.

>>> print(check_get_stats(lambda ids: {}))
❌ count pairs: not right yet — count_pairs([1, 2, 3, 1, 2]) returned {}: every pair of neighbours should be counted. Hint: loop over neighbours with zip(ids, ids[1:]) or itertools.pairwise(ids), and count each pair in a dict. Still stuck? Run hint("count pairs")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .. import tokenizer as bpe
from . import Mistake, NotDone, Verdict, call_unchanged, run_check

BYTE_CASES = ["hello", "héllo wörld", "日本語", "I ❤️ 🤖", "", "tab\tnew\nline", "ÿ"]
PAIR_CASES = [[1, 2, 3, 1, 2], [5, 5, 5, 5], [3, 1, 2, 1], [7], [], [104, 101, 108, 108, 111], [300, 12, 300, 12, 300]]
MERGE_CASES = [
    ([1, 2, 3, 1, 2], (1, 2), 99),
    ([5, 5, 5], (5, 5), 6),  # overlapping: left to right, no double use
    ([5, 5, 5, 5], (5, 5), 6),
    ([1, 2], (2, 1), 9),  # the pair does not occur
    ([3, 1, 2], (1, 2), 256),  # the pair at the very end
    ([11, 2, 1, 2, 1, 22], (1, 2), 300),  # two-digit ids: "11 2" contains "1 2" as text
    ([7, 1, 2, 1, 2], (1, 2), 257),
    ([], (1, 2), 256),
]
TRAIN_TEXT_CHARS = 4000  # the start of the course corpus: small enough for a plain-Python loop
TRAIN_MERGES = 20
SECOND_TRAIN_TEXT = "low lower lowest newest widest 2024 2025 " * 12 + "the newest widest tower, 11 or 12? "
SECOND_TRAIN_MERGES = 9
COUNT_PROMPTS = (
    "Übersetze bitte ins Englische: »Der Kühlschrank ist leer.«\n"
    "def total(prices):\n    return sum(p * 1.19 for p in prices)  # 19 % VAT\n",
    "Tokens are cheap: 12,345 of them cost $0.02 🙂",
)
VOCAB_BUDGET = 512  # exercise 7: at most this many tokens (256 bytes + 256 merges)
TARGET_BYTES_PER_TOKEN = 2.2  # exercise 7: UTF-8 bytes per token on the held-out sections
HELDOUT_SEED, HELDOUT_SECTIONS = 2026, 5  # which sections of the corpus exercise 7 holds out
REFERENCE = "course_utils.tokenizer.train"


def _not_none(value: Any) -> Any:
    if value is None:
        raise Mistake("your function returned None: did you forget `return`?")
    return value


# ----------------------------------------------------------------------------- exercise 1
def check_byte_encoding(fn: Callable[[str], list[int]]) -> Verdict:
    """``fn(text)`` must return the UTF-8 bytes of ``text`` as a list of ints."""

    def test(fn: Callable[[str], Any]) -> bool | str:
        for text in BYTE_CASES:
            try:
                got = _not_none(fn(text))
            except UnicodeEncodeError:
                return f"to_bytes({text!r}) raised UnicodeEncodeError: that encoding has no bytes for these characters; UTF-8 has bytes for every one"
            want = bpe.text_to_bytes(text)
            if isinstance(got, bytes | bytearray):
                return f"to_bytes({text!r}) returned a bytes object; the exercise asks for a list of ints"
            got = list(got)
            if got == want:
                continue
            if got == [ord(c) for c in text]:
                return f"to_bytes({text!r}) gave code points (ord), not UTF-8 bytes: {got} instead of {want}"
            for other in ("latin-1", "utf-16", "utf-16-le", "utf-32"):
                try:
                    if got == list(text.encode(other)):
                        return f"to_bytes({text!r}) gave the bytes of the {other} encoding; byte-level BPE works on UTF-8"
                except UnicodeEncodeError:
                    pass
            return f"to_bytes({text!r}) returned {got[:12]} but should be {want[:12]}"
        return True

    return run_check("text to bytes", test, fn, hint="str.encode turns text into bytes; byte-level tokenizers read one particular encoding of the text",
                     more="list(text.encode('utf-8')) gives ints 0..255")


# ----------------------------------------------------------------------------- exercise 2
def check_get_stats(fn: Callable[[list[int]], dict]) -> Verdict:
    """``fn(ids)`` must count each adjacent pair: ``{(a, b): count}``."""

    def test(fn: Callable[[list[int]], Any]) -> bool | str:
        first = None
        for ids in PAIR_CASES:
            got, want = _not_none(call_unchanged(fn, list(ids))), bpe.get_stats(ids)
            got = dict(got)
            first = got if first is None else first
            if any(not isinstance(k, tuple) for k in got):
                return f"count_pairs({ids}) has keys {list(got)[:3]}; use tuples (a, b) as keys"
            if got == want:
                continue
            if not got and want:
                return f"count_pairs({ids}) returned {{}}: every pair of neighbours should be counted"
            if set(got) == set(want) and all(v == 1 for v in got.values()):
                return f"count_pairs({ids}) returned {got}: each pair is counted once; count how often it occurs"
            if {tuple(sorted(p)) for p in want} == set(got):
                return f"count_pairs({ids}) returned {got}: (a, b) and (b, a) are different pairs, keep the order of the neighbours"
            if all(got.get(p, 0) >= n for p, n in want.items()) and got != want and ids is not PAIR_CASES[0]:
                return (f"count_pairs({ids}) returned {got} but should be {want}: counts from an earlier call are still there "
                        "(a dict used as a default argument, or defined outside the function, is shared between calls)")
            if sum(got.values()) < sum(want.values()):
                return f"count_pairs({ids}) returned {got} but should be {want}: some neighbours were skipped (every position starts a pair, not every second)"
            return f"count_pairs({ids}) returned {got} but should be {want}"
        again = dict(fn(list(PAIR_CASES[0])))
        if again != first:
            return "calling count_pairs twice on the same list gave different counts: a dict kept between calls (default argument?) is changed"
        return True

    return run_check("count pairs", test, fn, hint="loop over neighbours with zip(ids, ids[1:]) or itertools.pairwise(ids), and count each pair in a dict",
                     more="counts[pair] = counts.get(pair, 0) + 1 for each pair in pairwise(ids), with counts = {} made inside the function")


# ----------------------------------------------------------------------------- exercise 3
def check_merge(fn: Callable[[list[int], tuple[int, int], int], list[int]]) -> Verdict:
    """``fn(ids, pair, new_id)`` must replace each occurrence of ``pair``, left to right, in a new list."""

    def test(fn: Callable[..., Any]) -> bool | str:
        for ids, pair, new_id in MERGE_CASES:
            try:
                got = _not_none(call_unchanged(fn, list(ids), pair, new_id))
            except Mistake as err:
                raise Mistake(f"merge_pair({ids}, {pair}, {new_id}): {err}") from None
            want = bpe.merge(ids, pair, new_id)
            got = list(got)
            if got == want:
                continue
            shown = f"merge_pair({ids}, {pair}, {new_id}) returned {got} but should be {want}"
            if pair[0] == pair[1] and got.count(new_id) > want.count(new_id):
                return f"{shown}: an id that was merged is used up; after a match, skip both of its ids"
            if len(got) == len(want) - 1 and got == want[:-1]:
                return f"{shown}: the last id is missing (does your loop stop one position early?)"
            if any(x >= 10 for x in ids) and len(got) != len(want):
                return f"{shown}: ids with two digits went wrong; work on the list of ints, not on their text"
            if len(got) == len(ids):
                return f"{shown}: a pair of two ids becomes one new id, so the list gets shorter by one per match"
            return shown
        return True

    return run_check("merge a pair", test, fn, hint="walk through the list with an index and look at ids[i], ids[i + 1]; think about where i goes after a match",
                     more="when ids[i], ids[i+1] == pair append new_id and i += 2, else append ids[i] and i += 1; stop when i reaches len(ids)")


# ----------------------------------------------------------------------------- exercise 4
def _replay(merges: dict, text: str, num_merges: int, name: str) -> str | None:
    """None if every merge is *a* most frequent pair inside the chunks of ``text`` at its step."""
    if len(merges) != num_merges:
        return f"train_bpe({name}, {num_merges}) returned {len(merges)} merges instead of {num_merges}"
    if list(merges.values()) != list(range(256, 256 + num_merges)):
        return f"the new ids should be 256, 257, ... in order; got {list(merges.values())[:5]}..."
    chunks = [list(c.encode("utf-8")) for c in bpe.split_text(text)]
    for step, (pair, new_id) in enumerate(merges.items()):
        stats: dict = {}
        for ids in chunks:
            bpe.get_stats(ids, stats)
        best = max(stats.values())
        if not stats.get(pair):
            return (f"merge {step + 1} on {name} is {pair}, a pair that never occurs inside one chunk; "
                    "cut the text into chunks first and count pairs within each chunk")
        if stats[pair] != best:
            top = max(stats, key=stats.get)
            return (f"merge {step + 1} on {name} is {pair} (seen {stats[pair]} times) but {top} is seen {best} times; "
                    "count the pairs of all chunks together, after applying the earlier merges, and pick the most frequent")
        chunks = [bpe.merge(ids, pair, new_id) for ids in chunks]
    return None


def check_train(fn: Callable[[str, int], dict], text: str | None = None, num_merges: int = TRAIN_MERGES) -> Verdict:
    """``fn(text, num_merges)`` must return merges ``{(a, b): new_id}`` learned on regex chunks.

    The check replays the merges on ``text`` (the first 4,000 characters of the course corpus by
    default) and on a second, small text with another number of merges: each must merge *a* most
    frequent pair at its step. Ties (two pairs equally frequent) may be broken either way, so the
    merges can differ from ``course_utils.tokenizer.train`` only where the counts tie.
    """
    text = bpe.corpus()[:TRAIN_TEXT_CHARS] if text is None else text
    answer: dict = {}

    def test(fn: Callable[..., Any]) -> bool | str:
        merges = answer["merges"] = dict(_not_none(call_unchanged(fn, text, num_merges)))
        problem = _replay(merges, text, num_merges, "the corpus")
        if problem:
            return problem
        other = dict(_not_none(call_unchanged(fn, SECOND_TRAIN_TEXT, SECOND_TRAIN_MERGES)))
        if list(other.items()) == list(merges.items())[:len(other)]:
            return "train_bpe gave the same merges for another text: learn them from the text argument"
        problem = _replay(other, SECOND_TRAIN_TEXT, SECOND_TRAIN_MERGES, "a second text")
        if problem:
            return problem + " (the check also trains on a second text, with another number of merges)"
        return True

    verdict = run_check("train BPE", test, fn, hint="each round: count the pairs over all chunks, take the most frequent, merge it in every chunk",
                        more="chunks = [to_bytes(c) for c in split_text(text)]; for step in range(num_merges): add up count_pairs(ids) of every chunk, "
                             "best = max(counts, key=counts.get), merges[best] = 256 + step, chunks = [merge_pair(ids, best, 256 + step) ...]")
    if verdict.passed:  # say how it compares with the course's tokenizer (ties may differ)
        reference = list(bpe.train(text, 256 + num_merges).merges)
        same = sum(a == b for a, b in zip(answer["merges"], reference, strict=True))
        note = (f"your {num_merges} merges are exactly those of {REFERENCE}" if same == num_merges
                else f"{same} of your {num_merges} merges are identical to {REFERENCE}'s; the others "
                "differ only because equally frequent pairs may be taken in either order")
        verdict = Verdict(verdict.name, verdict.status, note)
    return verdict


# ----------------------------------------------------------------------------- exercise 5
def check_token_count(fn: Callable[[str], dict], prompt: str | None = None) -> Verdict:
    """``fn(prompt)`` must return ``{"SmolLM2": n, "cl100k_base": m}`` token counts (no special tokens)."""
    prompts = COUNT_PROMPTS if prompt is None else (prompt,)

    def test(fn: Callable[[str], Any]) -> bool | str:
        for text in prompts:
            got = dict(_not_none(fn(text)))
            want = {"SmolLM2": len(bpe.smollm2().encode(text)), "cl100k_base": len(bpe.cl100k_tiktoken().encode_ordinary(text))}
            if set(got) != set(want):
                return f"return a dict with the keys {sorted(want)}; got keys {sorted(got)}"
            if got == want:
                continue
            if isinstance(got["SmolLM2"], list | tuple) or isinstance(got["cl100k_base"], list | tuple):
                return "return the number of tokens (len of the ids), not the ids"
            if got == {"SmolLM2": want["cl100k_base"], "cl100k_base": want["SmolLM2"]}:
                return "the two counts are swapped: which tokenizer is SmolLM2's?"
            if got["SmolLM2"] == got["cl100k_base"] and want["SmolLM2"] != want["cl100k_base"] and got["SmolLM2"] in want.values():
                return "both numbers come from the same tokenizer: encode the text with each of the two"
            for name, n in want.items():
                if got[name] == n:
                    continue
                for count, what in ((len(text), "characters"), (len(text.encode("utf-8")), "UTF-8 bytes"), (len(text.split()), "words")):
                    if got[name] == count:
                        return f"{name}: {got[name]} is the number of {what}, not tokens"
                if got[name] == n + 1 or got[name] == n + 2:
                    return f"{name}: {got[name]} is {got[name] - n} more than the text's tokens: count the text only, without special tokens"
                return f"{name}: {got[name]} tokens, but the tokenizer makes {n} of this prompt (no special tokens)"
        return True

    return run_check("count tokens", test, fn, hint="each tokenizer's encode gives the ids: their number is the count",
                     more="len(smollm2().encode(text)) and len(cl100k_tiktoken().encode_ordinary(text))")


# ----------------------------------------------------------------------------- exercise 6: encode
ENCODE_MERGES_VOCAB = 330  # exercise 6 encodes with merges learned on the corpus up to this vocabulary
CROSSING = {(101, 32): 256, (32, 116): 257, (257, 104): 258, (49, 49): 259}  # "e " crosses a chunk boundary
ENCODE_TEXTS = ("the cat sat on the mat", "", "héllo wörld 🤖", "11 + 11 = 22, 111 + 1 = 112", "there the\nthen  these")


def _vocab(merges: dict) -> dict[int, bytes]:
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new in merges.items():
        vocab[new] = vocab[a] + vocab[b]
    return vocab


def _encode_variants(text: str, merges: dict) -> list[tuple[list[int], str]]:
    """The ids the usual encoding mistakes give."""
    def apply(ids: list[int], order: list) -> list[int]:
        for pair, new in order:
            ids = bpe.merge(ids, pair, new)
        return ids

    def one_round(ids: list[int]) -> list[int]:
        present = [p for p in zip(ids, ids[1:]) if p in merges]
        return bpe.merge(ids, min(present, key=merges.get), merges[min(present, key=merges.get)]) if present else ids

    ordered = list(merges.items())
    chunks = [list(c.encode("utf-8")) for c in bpe.split_text(text)]
    return [
        (apply(list(text.encode("utf-8")), ordered), "merges were applied across chunk boundaries: cut the text with split_text(text) first and encode each chunk on its own"),
        ([i for c in chunks for i in apply(c, ordered[::-1])], "the merges were applied in reverse order: apply them in the order they were learned (lowest new id first)"),
        ([i for c in chunks for i in one_round(c)], "only one merge was applied per chunk: keep merging a chunk until no pair of it is in merges"),
        (list(text.encode("utf-8")), "no merge was applied: your ids are the plain bytes"),
    ]


def check_encode(encode: Callable[[str, dict], list[int]]) -> Verdict:
    """``encode(text, merges)``: the token ids of ``text`` with the learned ``merges``, chunk by chunk."""

    def test(fn: Callable[..., Any]) -> bool | str:
        learned = bpe.train(bpe.corpus()[:TRAIN_TEXT_CHARS * 2], ENCODE_MERGES_VOCAB).merges
        unsure = ""  # a wrong result that two mistakes explain equally: a later text tells them apart
        for merges, label in ((CROSSING, "a few hand-made merges"), (learned, f"{len(learned)} merges learned on the corpus")):
            tokenizer = bpe.Tokenizer(merges)
            for text in (*ENCODE_TEXTS, bpe.corpus("heldout")[:600]):
                got = [int(i) for i in _not_none(call_unchanged(fn, text, dict(merges)))]
                want = tokenizer.encode(text)
                if got == want:
                    continue
                where = f"with {label}, encode({text[:30]!r}{'...' if len(text) > 30 else ''})"
                named = [message for wrong, message in _encode_variants(text, merges) if got == wrong != want]
                if len(named) == 1:
                    return f"{where}: {named[0]}"
                if named:
                    unsure = unsure or f"{where}: {named[0]}"
                    continue
                vocab = _vocab(merges)
                if any(i not in vocab for i in got):
                    return f"{where} gave ids that are neither bytes nor merges: {[i for i in got if i not in vocab][:3]}"
                if b"".join(vocab[i] for i in got) != text.encode("utf-8"):
                    return f"{where}: your ids do not decode back to the text; each merge must replace exactly its pair"
                if len(got) > len(want):
                    return (f"{where} gave {len(got)} tokens, the tokenizer {len(want)}: some merges were not applied; "
                            "keep merging a chunk until no pair of it is in merges")
                return f"{where} gave {got[:8]}..., the tokenizer {want[:8]}...; the pair to merge next is the one learned earliest"
        return unsure or True

    return run_check("encode", test, encode, hint="encode each chunk of split_text(text) on its own, applying merges in the order they were learned",
                     more="for each chunk: ids = to_bytes(chunk); while some pair of ids is in merges: take the pair with the smallest merges[pair], ids = merge_pair(...)")


# ----------------------------------------------------------------------------- exercise 7: build and measure
def heldout_split() -> tuple[str, str]:
    """(training text, held-out text): the corpus cut at its ``## N.`` sections; the check holds out a few.

    >>> train_text, heldout = heldout_split()
    >>> len(train_text) > 2 * len(heldout) > 0 and heldout not in train_text
    True
    """
    import numpy as np

    sections = re.split(r"(?m)^(?=## \d+\.)", bpe.corpus("all"))
    held = set(np.random.default_rng(HELDOUT_SEED).choice(np.arange(1, len(sections)), HELDOUT_SECTIONS, replace=False).tolist())
    return "".join(s for i, s in enumerate(sections) if i not in held), "".join(sections[i] for i in sorted(held))


def check_compression(build_tokenizer: Callable[[str, int], dict], encode: Callable[[str, dict], list[int]],
                      vocab_size: int = VOCAB_BUDGET, target: float = TARGET_BYTES_PER_TOKEN) -> Verdict:
    """``build_tokenizer(text, vocab_size)`` -> merges; with ``encode(text, merges)`` it must reach
    ``target`` UTF-8 bytes per token on sections of the corpus it never sees, losslessly."""
    train_text, heldout = heldout_split()

    def test(fn: Callable[..., Any]) -> bool | str:
        merges = dict(_not_none(call_unchanged(fn, train_text, vocab_size)))
        if len(merges) > vocab_size - 256:
            return f"{len(merges)} merges make {256 + len(merges)} tokens, over the budget of {vocab_size}"
        if set(merges.values()) != set(range(256, 256 + len(merges))):
            return "the merges' new ids should be 256, 257, ... one each"
        vocab = _vocab(merges)
        ids = encode(heldout, merges)
        if ids is None:
            raise NotDone
        ids = [int(i) for i in ids]
        if any(i not in vocab for i in ids):
            return "encode gave ids that are not in your vocabulary"
        if b"".join(vocab[i] for i in ids) != heldout.encode("utf-8"):
            return "your tokens do not decode back to the held-out text: the tokenizer loses information"
        yours = len(heldout.encode("utf-8")) / max(len(ids), 1)
        reference = bpe.compression_ratio(bpe.train(train_text, vocab_size), heldout)
        report = (f"your tokenizer ({256 + len(merges)} tokens) makes {yours:.3f} UTF-8 bytes per token on {HELDOUT_SECTIONS} held-out "
                  f"sections of the corpus ({len(heldout):,} characters); target {target:.2f}; {REFERENCE} with the same "
                  f"budget of {vocab_size}: {reference:.3f}")
        print(report)
        if yours >= target:
            return True
        return f"{report}: more merges, learned on more of the training text, make longer tokens"

    return run_check("a tokenizer that compresses", test, build_tokenizer,
                     hint=f"use the whole training text the check hands you and all {vocab_size - 256} merges the budget allows",
                     more="return train_bpe(text, vocab_size - 256): your exercise-4 loop on the text it is given")
