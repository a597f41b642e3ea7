"""Lab 14's checks catch real mistakes: each is fed the wrong implementations a learner writes (each must fail
with a message naming the mistake), one unusual but correct implementation (must pass), a function that changes
its input, and a TODO stub (not done)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from verdicts import failed_with, todo

from course_utils.checks.hallucination import (
    check_debiased_pair,
    check_ece,
    check_kappa,
    check_threshold,
)


# ----------------------------------------------------------------------------- ECE
def ece_with(assign, weighted=True, signed=False, empty_ok=False):
    def ece(confidences, correct, n_bins=10):
        c, r = np.asarray(confidences, float), np.asarray(correct, float)
        if c.size == 0:
            if empty_ok:
                return 0.0
            raise ValueError("no answers")
        which = assign(c, n_bins)
        gaps, weights = [], []
        for b in range(n_bins):
            inside = which == b
            if inside.any():
                g = r[inside].mean() - c[inside].mean()
                gaps.append(g if signed else abs(g))
                weights.append(inside.mean())
        return float(np.dot(gaps, weights)) if weighted else float(np.mean(gaps))
    return ece


LEFT = lambda c, m: np.searchsorted(np.linspace(0, 1, m + 1)[1:-1], c, side="left")  # noqa: E731
FLOOR = lambda c, m: np.minimum((c * m).astype(int), m - 1)  # noqa: E731
FLOOR_NO_CLIP = lambda c, m: (c * m).astype(int)  # noqa: E731  1.0 falls outside every bin


def test_ece_reference_style_passes_and_a_todo_is_not_done():
    assert check_ece(ece_with(LEFT)).passed
    assert check_ece(todo).status == "not done"


def test_ece_unusual_but_correct_passes():
    """Pure Python, bins by ceil(c * M) - 1 with 0 mapped to bin 0: the same convention written another way."""
    def ece(confidences, correct, n_bins=10):
        if not confidences:
            raise ValueError("empty")
        bins = {}
        for c, r in zip(confidences, correct):
            edges = np.linspace(0, 1, n_bins + 1)
            b = next(i for i in range(n_bins) if c <= edges[i + 1])
            bins.setdefault(b, []).append((c, float(r)))
        n = len(confidences)
        return sum(len(v) / n * abs(sum(r for _, r in v) / len(v) - sum(c for c, _ in v) / len(v)) for v in bins.values())
    assert check_ece(ece).passed, check_ece(ece)


@pytest.mark.parametrize("wrong, words", [
    (ece_with(LEFT, weighted=False), ["equal weight"]),
    (ece_with(LEFT, signed=True), ["sign"]),
    (ece_with(FLOOR), ["edge", "bin below"]),
    (ece_with(lambda c, m: np.minimum(np.searchsorted(np.linspace(0, 1, m + 1)[1:-1], c, side="right"), m - 1)), ["edge", "bin below"]),
    (ece_with(LEFT, empty_ok=True), ["no answers", "valueerror"]),
])
def test_ece_mistakes_are_named(wrong, words):
    failed_with(check_ece(wrong), *words)


def test_ece_dropping_confidence_one_is_caught():
    verdict = check_ece(ece_with(FLOOR_NO_CLIP))
    assert verdict.status == "failed" and ("1.0" in verdict.message or "edge" in verdict.message), verdict


def test_ece_that_sorts_its_input_in_place_fails():
    def ece(confidences, correct, n_bins=10):
        pairs = sorted(zip(confidences, correct))
        confidences.sort()
        return ece_with(LEFT)([p[0] for p in pairs], [p[1] for p in pairs], n_bins)
    failed_with(check_ece(ece), "in place")


# ----------------------------------------------------------------------------- abstention threshold
def threshold_reference_loop(confidences, correct, target):
    best = math.inf
    c, r = np.asarray(confidences, float), np.asarray(correct, float)
    for t in sorted(set(c.tolist()), reverse=True):
        if r[c >= t].mean() >= target:
            best = t
    return best


def test_threshold_reference_passes_and_todo_is_not_done():
    assert check_threshold(threshold_reference_loop).passed
    assert check_threshold(todo).status == "not done"


def test_threshold_unusual_but_correct_passes():
    """Vectorised with np.unique and cumulative sums, ascending order, and an early return."""
    def choose(confidences, correct, target):
        c, r = np.asarray(confidences, float), np.asarray(correct, float)
        values = np.unique(c)  # ascending: the first that works answers the most
        for t in values:
            if r[c >= t].sum() / (c >= t).sum() >= target:
                return float(t)
        return math.inf
    assert check_threshold(choose).passed, check_threshold(choose)


def highest_threshold(confidences, correct, target):
    c, r = np.asarray(confidences, float), np.asarray(correct, float)
    for t in sorted(set(c.tolist()), reverse=True):
        if r[c >= t].mean() >= target:
            return t
    return math.inf


def split_ties(confidences, correct, target):
    order = np.argsort(-np.asarray(confidences, float), kind="stable")
    c, r = np.asarray(confidences, float)[order], np.asarray(correct, float)[order]
    acc = np.cumsum(r) / np.arange(1, len(c) + 1)
    ok = np.flatnonzero(acc >= target)
    return float(c[ok[-1]]) if ok.size else math.inf


def returns_accuracy(confidences, correct, target):
    c, r = np.asarray(confidences, float), np.asarray(correct, float)
    best = math.inf
    for t in sorted(set(c.tolist()), reverse=True):
        if r[c >= t].mean() >= target:
            best = r[c >= t].mean()
    return best


def zero_when_impossible(confidences, correct, target):
    t = threshold_reference_loop(confidences, correct, target)
    return 0.0 if t == math.inf else t


@pytest.mark.parametrize("wrong, words", [
    (highest_threshold, ["highest", "lowest"]),
    (split_ties, ["ties"]),
    (returns_accuracy, ["accuracy", "not the threshold"]),
    (zero_when_impossible, ["math.inf"]),
])
def test_threshold_mistakes_are_named(wrong, words):
    failed_with(check_threshold(wrong), *words)


def test_threshold_that_sorts_its_input_fails():
    def choose(confidences, correct, target):
        t = threshold_reference_loop(confidences, correct, target)
        confidences.sort()
        return t
    failed_with(check_threshold(choose), "in place")


# ----------------------------------------------------------------------------- kappa
def kappa_with(chance):
    def kappa(a, b):
        n = len(a)
        p_o = sum(x == y for x, y in zip(a, b)) / n
        p_e = chance(a, b, n)
        return float("nan") if p_e == 1 else (p_o - p_e) / (1 - p_e)
    return kappa


BOTH = lambda a, b, n: sum(a.count(c) / n * b.count(c) / n for c in set(a) | set(b))  # noqa: E731


def test_kappa_reference_passes_and_todo_is_not_done():
    assert check_kappa(kappa_with(BOTH)).passed
    assert check_kappa(todo).status == "not done"


def test_kappa_unusual_but_correct_passes():
    """Through a confusion matrix, with labels mapped to indices."""
    def kappa(a, b):
        labels = sorted(set(a) | set(b), key=str)
        index = {lab: i for i, lab in enumerate(labels)}
        m = np.zeros((len(labels), len(labels)))
        for x, y in zip(a, b):
            m[index[x], index[y]] += 1
        m /= m.sum()
        p_o, p_e = np.trace(m), float(m.sum(1) @ m.sum(0))
        return float("nan") if np.isclose(p_e, 1) else float((p_o - p_e) / (1 - p_e))
    assert check_kappa(kappa).passed, check_kappa(kappa)


@pytest.mark.parametrize("wrong, words", [
    (lambda a, b: sum(x == y for x, y in zip(a, b)) / len(a), ["observed agreement"]),
    (kappa_with(lambda a, b, n: 0.5), ["1/2"]),
    (kappa_with(lambda a, b, n: sum((a.count(c) / n) ** 2 for c in set(a) | set(b))), ["first grader"]),
    (lambda a, b: 0.0 if len(set(a)) == len(set(b)) == 1 else kappa_with(BOTH)(a, b), ["nan"]),
    (kappa_with(lambda a, b, n: (a.count(1) / n) * (b.count(1) / n) + 0 * len(set(a))), ["only one label"]),
])
def test_kappa_mistakes_are_named(wrong, words):
    failed_with(check_kappa(wrong), *words)


def test_kappa_that_changes_its_input_fails():
    def kappa(a, b):
        value = kappa_with(BOTH)(a, b)
        a.reverse()
        return value
    failed_with(check_kappa(kappa), "in place")


# ----------------------------------------------------------------------------- debiased pair
def pair_reference(judge, question, a, b):
    first, second = judge(question, a, b), judge(question, b, a)
    return "A" if (first, second) == ("A", "B") else "B" if (first, second) == ("B", "A") else "tie"


def test_pair_reference_passes_and_todo_is_not_done():
    assert check_debiased_pair(pair_reference).passed
    assert check_debiased_pair(todo).status == "not done"


def test_pair_unusual_but_correct_passes():
    """Calls b-first before a-first, and scores wins with a dictionary."""
    def debiased(judge, question, a, b):
        wins = {a: 0, b: 0} if a != b else {a: 0}
        wins[b if judge(question, b, a) == "A" else a] += 1
        wins[a if judge(question, a, b) == "A" else b] += 1
        return "A" if wins[a] == 2 else "B" if wins.get(b, 0) == 2 else "tie"
    assert check_debiased_pair(debiased).passed, check_debiased_pair(debiased)


@pytest.mark.parametrize("wrong, words", [
    (lambda judge, q, a, b: judge(q, a, b), ["called 1 time"]),
    (lambda judge, q, a, b: judge(q, a, b) if judge(q, b, a) else None, ["first order"]),
    (lambda judge, q, a, b: (lambda f, s, again: f if f == again else "tie")(judge(q, a, b), judge(q, b, a), judge(q, a, b)), ["called 3 times"]),
    (lambda judge, q, a, b: (lambda f, s: "A" if f == s == "A" else "B" if f == s == "B" else "tie")(judge(q, a, b), judge(q, b, a)), ["swapped", "map it back"]),
    (lambda judge, q, a, b: (lambda f, s: f if f != s else "A")(judge(q, a, b), judge(q, b, a)), ["tie", "not a win for a"]),
])
def test_pair_mistakes_are_named(wrong, words):
    failed_with(check_debiased_pair(wrong), *words)
