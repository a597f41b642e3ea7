"""Lab 01's checks catch real mistakes: each exercise's check is fed the wrong implementations a learner
writes (each must fail with a message naming the mistake), an unusual but correct one (must pass), and the
TODO stub (not done); the first failure never shows the ``more=`` hint."""

from __future__ import annotations

import heapq
from collections import Counter
from itertools import pairwise

import pytest
from verdicts import failed_with, todo

from course_utils import tokenizer as bpe
from course_utils.checks import tokens as checks


def test_every_todo_is_not_done():
    for check in (checks.check_byte_encoding, checks.check_get_stats, checks.check_merge, checks.check_train,
                  checks.check_token_count, checks.check_encode):
        assert check(todo).status == "not done", check
    assert checks.check_compression(todo, bpe.Tokenizer({}).encode).status == "not done"
    assert checks.check_compression(lambda t, v: bpe.train(t, v).merges, todo).status == "not done"


# ----------------------------------------------------------------------------- 1. text to bytes
def test_bytes_reference_and_an_unusual_one_pass():
    assert checks.check_byte_encoding(bpe.text_to_bytes).passed
    assert checks.check_byte_encoding(lambda t: [b for ch in t for b in ch.encode("utf-8")]).passed  # char by char, extra generator


@pytest.mark.parametrize("wrong, words", [
    (lambda t: [ord(c) for c in t], ["code points"]),
    (lambda t: list(t.encode("latin-1")), ["utf-8"]),
    (lambda t: list(t.encode("utf-16-le")), ["utf-16"]),
    (lambda t: t.encode("utf-8"), ["bytes object", "list of ints"]),
    (lambda t: None, ["return"]),
])
def test_bytes_mistakes_are_named(wrong, words):
    failed_with(checks.check_byte_encoding(wrong), *words)


# ----------------------------------------------------------------------------- 2. count pairs
def test_pairs_reference_and_unusual_ones_pass():
    assert checks.check_get_stats(bpe.get_stats).passed
    assert checks.check_get_stats(lambda ids: Counter(zip(ids, ids[1:]))).passed  # a Counter is a dict
    assert checks.check_get_stats(lambda ids, counts=None: dict(Counter(pairwise(ids)))).passed  # extra argument with a default


def counts_with_shared_default(ids, counts={}):  # noqa: B006 - the mistake under test
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def pairs_that_pop(ids):
    counts = {}
    while len(ids) > 1:
        pair = (ids.pop(0), ids[0])
        counts[pair] = counts.get(pair, 0) + 1
    return counts


@pytest.mark.parametrize("wrong, words", [
    (lambda ids: {p: 1 for p in pairwise(ids)}, ["counted once"]),
    (lambda ids: dict(Counter(tuple(sorted(p)) for p in pairwise(ids))), ["different pairs", "order"]),
    (lambda ids: dict(Counter(zip(ids[::2], ids[1::2]))), ["skipped"]),
    (counts_with_shared_default, ["earlier call", "default argument"]),
    (pairs_that_pop, ["in place"]),
    (lambda ids: {f"{a},{b}": 1 for a, b in pairwise(ids)} or {(0, 0): 0}, ["tuples"]),
])
def test_pairs_mistakes_are_named(wrong, words):
    failed_with(checks.check_get_stats(wrong), *words)


# ----------------------------------------------------------------------------- 3. merge a pair
def merge_recursive(ids, pair, new_id, start=0):
    """Unusual but correct: recursion over a tuple, an extra argument with a default."""
    ids = tuple(ids)
    if len(ids) < 2:
        return list(ids)
    if ids[:2] == tuple(pair):
        return [new_id, *merge_recursive(ids[2:], pair, new_id)]
    return [ids[0], *merge_recursive(ids[1:], pair, new_id)]


def merge_no_skip(ids, pair, new_id):
    out = []
    for i, x in enumerate(ids):
        if i + 1 < len(ids) and (x, ids[i + 1]) == pair:
            out.append(new_id)
        elif not (i > 0 and (ids[i - 1], x) == pair):
            out.append(x)
    return out


def merge_as_text(ids, pair, new_id):
    text = " ".join(map(str, ids)).replace(f"{pair[0]} {pair[1]}", str(new_id))
    return [int(x) for x in text.split()]


def merge_stops_early(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def merge_in_place(ids, pair, new_id):
    i = 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            ids[i:i + 2] = [new_id]
        i += 1
    return ids


def test_merge_reference_and_an_unusual_one_pass():
    assert checks.check_merge(bpe.merge).passed
    assert checks.check_merge(merge_recursive).passed


@pytest.mark.parametrize("wrong, words", [
    (merge_no_skip, ["used up", "skip both"]),
    (merge_as_text, ["two digits", "list of ints"]),
    (merge_stops_early, ["last id is missing"]),
    (merge_in_place, ["in place"]),
    (lambda ids, pair, new: [new if x == pair[0] else x for x in ids], ["shorter"]),
])
def test_merge_mistakes_are_named(wrong, words):
    failed_with(checks.check_merge(wrong), *words)


# ----------------------------------------------------------------------------- 4. train
def train_like_the_lab(text, num_merges, split=True, first_chunk_only=False, stale_counts=False, fixed_text=None, off_by_one=False):
    text = fixed_text or text
    chunks = [list(c.encode("utf-8")) for c in bpe.split_text(text)] if split else [list(text.encode("utf-8"))]
    merges = {}
    counts: dict = {}
    for step in range(num_merges - 1 if off_by_one else num_merges):
        if not stale_counts or not counts:
            counts = {}
            for ids in chunks[:1] if first_chunk_only else chunks:
                bpe.get_stats(ids, counts)
        best = max(counts, key=counts.get)
        del counts[best]
        merges[best] = 256 + step
        chunks = [bpe.merge(ids, best, 256 + step) for ids in chunks]
    return merges


def train_with_a_heap(text, num_merges, verbose=False):
    """Unusual but correct: distinct chunks weighted by frequency, the best pair from a heap, ties by the larger ids."""
    words = Counter(bpe.split_text(text))
    chunks = {w: list(w.encode("utf-8")) for w in words}
    merges = {}
    for step in range(num_merges):
        counts = Counter()
        for w, ids in chunks.items():
            for p in pairwise(ids):
                counts[p] += words[w]
        heap = [(-n, tuple(-x for x in p), p) for p, n in counts.items()]
        heapq.heapify(heap)
        best = heap[0][2]
        merges[best] = 256 + step
        chunks = {w: bpe.merge(ids, best, 256 + step) for w, ids in chunks.items()}
    return merges


def test_train_reference_and_an_unusual_one_pass():
    verdict = checks.check_train(lambda text, n: bpe.train(text, 256 + n).merges)
    assert verdict.passed and "exactly those" in verdict.message
    other = checks.check_train(train_with_a_heap)
    assert other.passed, other


@pytest.mark.parametrize("kwargs, words", [
    ({"split": False}, ["never occurs inside one chunk"]),
    ({"first_chunk_only": True}, ["all chunks"]),
    ({"stale_counts": True}, ["after applying the earlier merges"]),
    ({"fixed_text": bpe.corpus()[:4000]}, ["same merges for another text"]),
    ({"off_by_one": True}, ["merges instead of"]),
])
def test_train_mistakes_are_named(kwargs, words):
    failed_with(checks.check_train(lambda text, n: train_like_the_lab(text, n, **kwargs)), *words)


def test_train_that_works_only_at_twenty_merges_fails():
    def twenty(text, num_merges):
        return train_like_the_lab(text, 20)
    failed_with(checks.check_train(twenty), "9")


# ----------------------------------------------------------------------------- 5. count tokens
def counts(text, extra=0):
    return {"SmolLM2": len(bpe.smollm2().encode(text)) + extra, "cl100k_base": len(bpe.cl100k_tiktoken().encode_ordinary(text)) + extra}


def test_token_count_reference_and_an_unusual_one_pass():
    assert checks.check_token_count(counts).passed
    from transformers import AutoTokenizer  # the transformers tokenizer of the lesson, not ours

    from course_utils.assets import hf_model_dir

    hf = AutoTokenizer.from_pretrained(hf_model_dir())
    assert checks.check_token_count(lambda t: {"cl100k_base": bpe.count_tokens(bpe.cl100k_base(), t),
                                                "SmolLM2": len(hf(t, add_special_tokens=False).input_ids)}).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda t: {"SmolLM2": len(t), "cl100k_base": len(t)}, ["characters"]),
    (lambda t: {"SmolLM2": len(t.split()), "cl100k_base": len(t.split())}, ["words"]),
    (lambda t: {"SmolLM2": counts(t)["cl100k_base"], "cl100k_base": counts(t)["SmolLM2"]}, ["swapped"]),
    (lambda t: {"SmolLM2": counts(t)["cl100k_base"], "cl100k_base": counts(t)["cl100k_base"]}, ["same tokenizer"]),
    (lambda t: counts(t, extra=1), ["special tokens"]),
    (lambda t: {"SmolLM2": 37, "cl100k_base": 36} if len(t) > 100 else counts(t, 5), ["tokens, but"]),  # typed-in numbers
])
def test_token_count_mistakes_are_named(wrong, words):
    failed_with(checks.check_token_count(wrong), *words)


# ----------------------------------------------------------------------------- 6. encode
def encode_minbpe(text, merges):
    ids = []
    for chunk in bpe.split_text(text):
        part = list(chunk.encode("utf-8"))
        while len(part) > 1:
            pair = min(pairwise(part), key=lambda p: merges.get(p, float("inf")))
            if pair not in merges:
                break
            part = bpe.merge(part, pair, merges[pair])
        ids += part
    return ids


def encode_in_merge_order(text, merges, errors="strict"):
    """Unusual but correct: every merge in turn over every chunk (slower, same ids)."""
    chunks = [list(c.encode("utf-8")) for c in bpe.split_text(text)]
    for pair, new in sorted(merges.items(), key=lambda kv: kv[1]):
        chunks = [bpe.merge(c, pair, new) for c in chunks]
    return [i for c in chunks for i in c]


def encode_whole(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, new in merges.items():
        ids = bpe.merge(ids, pair, new)
    return ids


def encode_backwards(text, merges):
    chunks = [list(c.encode("utf-8")) for c in bpe.split_text(text)]
    for pair, new in sorted(merges.items(), key=lambda kv: -kv[1]):
        chunks = [bpe.merge(c, pair, new) for c in chunks]
    return [i for c in chunks for i in c]


def encode_one_round(text, merges):
    ids = []
    for chunk in bpe.split_text(text):
        part = list(chunk.encode("utf-8"))
        pairs = [p for p in pairwise(part) if p in merges]
        if pairs:
            best = min(pairs, key=merges.get)
            part = bpe.merge(part, best, merges[best])
        ids += part
    return ids


def encode_popping(text, merges):
    merges.pop(next(iter(merges)))
    return encode_minbpe(text, merges)


def test_encode_reference_and_an_unusual_one_pass():
    assert checks.check_encode(encode_minbpe).passed
    assert checks.check_encode(encode_in_merge_order).passed
    assert checks.check_encode(lambda text, merges: bpe.Tokenizer(merges).encode(text)).passed


@pytest.mark.parametrize("wrong, words", [
    (encode_whole, ["chunk boundaries", "split_text"]),
    (encode_backwards, ["reverse order"]),
    (lambda text, merges: list(text.encode("utf-8")), ["no merge was applied"]),
    (encode_one_round, ["only one merge", "until no pair"]),
    (encode_popping, ["in place"]),
])
def test_encode_mistakes_are_named(wrong, words):
    failed_with(checks.check_encode(wrong), *words)


# ----------------------------------------------------------------------------- 7. build and measure
def test_the_heldout_sections_are_not_in_the_training_text():
    train_text, heldout = checks.heldout_split()
    assert train_text and heldout and len(train_text) + len(heldout) == len(bpe.corpus("all"))
    assert not any(line in train_text for line in heldout.splitlines() if line.startswith("## "))


def test_a_full_budget_tokenizer_reaches_the_target(capsys):
    verdict = checks.check_compression(lambda text, v: train_like_the_lab(text, v - 256), encode_minbpe)
    assert verdict.passed, verdict
    printed = capsys.readouterr().out
    assert "target 2.20" in printed and "course_utils.tokenizer.train" in printed


@pytest.mark.parametrize("build, encode, words", [
    (lambda text, v: train_like_the_lab(text[:4000], v - 256), encode_minbpe, ["target", "more of the training text"]),  # the start only
    (lambda text, v: bpe.train(text, 276).merges, encode_minbpe, ["target"]),  # the lab's 20 merges
    (lambda text, v: bpe.train(text, v).merges, encode_backwards, ["target"]),  # the right merges, applied backwards
    (lambda text, v: bpe.train(text, v).merges, lambda t, m: list(t.encode("utf-8")), ["target"]),  # bytes only
    (lambda text, v: bpe.train(text, v + 100).merges, encode_minbpe, ["over the budget"]),
    (lambda text, v: bpe.train(text, v).merges, lambda t, m: [min(i, 300) for i in encode_minbpe(t, m)], ["do not decode back"]),
])
def test_lazy_or_wrong_tokenizers_miss_the_target(build, encode, words):
    failed_with(checks.check_compression(build, encode), *words)
