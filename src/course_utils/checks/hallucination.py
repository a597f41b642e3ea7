"""Checks for lab 14 (hallucination, calibration, LLM-as-judge): ECE from scratch, an abstention
threshold measured on held-out questions, Cohen's kappa, a position-debiased pairwise judge.

Each ``check_*`` runs the learner's function on inputs it makes itself (random ones from a fixed seed,
and edge cases: confidences of exactly 0 and 1 and on bin edges, ties, empty input, graders that never
vary) and compares with :mod:`course_utils.calibration` and :mod:`course_utils.judging`. A wrong result
is compared with what the usual mistakes give (an unweighted mean, a signed gap, the wrong bin edge,
ties split, observed agreement instead of kappa, one order only), so the message names the mistake and
where to look, not the solution. A function that changes its inputs fails.

>>> def ece(confidences, correct, n_bins=10):
...     raise NotImplementedError
>>> check_ece(ece).status
'not done'
>>> from course_utils import calibration
>>> check_ece(calibration.expected_calibration_error).status
'passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import Mistake, Verdict, call_unchanged, run_check

TOL = 1e-9


# ----------------------------------------------------------------------------- shared inputs
def _outcomes(n: int, seed: int, power: float = 2.0) -> tuple[list[float], list[int]]:
    """Confidences in [0, 1] (edges and ends included) and outcomes right with probability conf**power."""
    import numpy as np

    rng = np.random.default_rng(seed)
    conf = rng.uniform(0, 1, n).round(3)
    conf[: min(n, 6)] = [0.0, 1.0, 0.1, 0.3, 0.5, 0.9][: min(n, 6)]
    right = (rng.uniform(0, 1, n) < conf ** power).astype(int)
    return conf.tolist(), right.tolist()


def _number(value: Any) -> float:
    if value is None:
        raise NotImplementedError
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Mistake(f"your function should return one number (a float), got {type(value).__name__}") from None


def _same_number(a: float, b: float, tol: float = TOL) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (math.isinf(a) and a == b) or abs(a - b) <= tol


# ----------------------------------------------------------------------------- 1. ECE
def _ece_variants(conf: list[float], right: list[int], n_bins: int) -> list[tuple[float, str]]:
    """What the usual mistakes give on these inputs."""
    import numpy as np

    c, r = np.asarray(conf, float), np.asarray(right, float)
    edges = np.linspace(0, 1, n_bins + 1)
    out = []

    def by(which: Any, weighted: bool = True, signed: bool = False) -> float:
        gaps, counts = [], []
        for b in range(n_bins):
            inside = which == b
            if inside.any():
                gap = r[inside].mean() - c[inside].mean()
                gaps.append(gap if signed else abs(gap))
                counts.append(inside.sum())
        gaps_a, counts_a = np.array(gaps), np.array(counts)
        return float((gaps_a * counts_a).sum() / len(c)) if weighted else float(gaps_a.mean())

    left = np.searchsorted(edges[1:-1], c, side="left")
    right_edge = np.minimum(np.searchsorted(edges[1:-1], c, side="right"), n_bins - 1)
    floor = np.minimum((c * n_bins).astype(int), n_bins - 1)
    out.append((by(left, weighted=False), "you averaged the bins' gaps with equal weight; each bin's gap counts by its share of "
                                          "the answers (n_bin / N), so a bin with one answer barely moves the ECE"))
    signed_note = ("the gaps are added with their sign, so over- and under-confident bins cancel; "
                   "take |accuracy - confidence| per bin before adding")
    out.append((by(left, signed=True), signed_note))
    out.append((abs(by(left, signed=True)), "the gaps are added with their sign, so over- and under-confident bins cancel; "
                                            "take |accuracy - confidence| per bin before adding"))
    out.append((by(right_edge), "a confidence exactly on an edge (0.1, 0.3, 0.5 ...) went to the bin above; here the bins are "
                                "[0, 1/M], (1/M, 2/M], ...: an edge belongs to the bin below (np.searchsorted(edges[1:-1], conf, side='left'))"))
    out.append((by(floor), "a confidence exactly on an edge went to the bin above (int(conf * M) puts 0.1 in bin 1); here the bins are "
                           "[0, 1/M], (1/M, 2/M], ...: an edge belongs to the bin below"))
    inner = c < 1.0
    if not inner.all() and inner.any():
        kept = np.searchsorted(edges[1:-1], c[inner], side="left")
        gaps = sum((kept == b).sum() / len(c) * abs(r[inner][kept == b].mean() - c[inner][kept == b].mean())
                   for b in range(n_bins) if (kept == b).any())
        out.append((float(gaps), "answers with confidence exactly 1.0 were left out: 1.0 belongs to the last bin"))
    return out


def check_ece(ece: Callable[..., Any]) -> Verdict:
    """``ece(confidences, correct, n_bins=10)``: the expected calibration error, from scratch."""
    from ..calibration import expected_calibration_error as reference

    def test(fn: Callable[..., Any]) -> bool | str:
        cases = [(_outcomes(200, seed=1), 10), (_outcomes(57, seed=2, power=0.5), 5), (_outcomes(30, seed=3), 15)]
        cases.append((([0.0, 1.0, 0.5, 0.5, 0.2], [0, 1, 1, 1, 0]), 2))  # both ends, and 0.5 on the edge of the two bins
        cases.append((([0.1, 0.1, 0.05, 0.15, 0.2, 0.2, 0.25], [1, 1, 0, 0, 0, 0, 1]), 10))  # edges between bins of opposite gaps
        cases.append((([0.8] * 10, [1] * 8 + [0] * 2), 10))  # calibrated: ECE 0
        for (conf, right), n_bins in cases:
            got = _number(call_unchanged(fn, list(conf), list(right), n_bins))
            want = reference(conf, right, n_bins)
            if _same_number(got, want, 1e-6):
                continue
            where = f"with {len(conf)} answers and n_bins={n_bins}"
            for wrong, message in _ece_variants(conf, right, n_bins):
                if _same_number(got, wrong, 1e-6):
                    return f"{where}: {message}"
            if got < 0 or got > 1:
                return f"{where}: an ECE is an average of gaps between two fractions, so it lies in [0, 1]; got {got:.4f}"
            return f"{where}: got {got:.4f}, expected {want:.4f}; look at how each answer is put into a bin and how the bins are added up"
        try:
            fn([], [], 10)
        except ValueError:
            pass
        except IndexError:
            return "with no answers at all your function raised IndexError; raise ValueError('no answers') instead"
        except ZeroDivisionError:
            return "with no answers at all your function divided by zero; check for empty input first and raise ValueError"
        else:
            return "with no answers at all there is no calibration error to compute: raise ValueError, do not return a number"
        return True

    return run_check("ece", test, ece,
                     hint="bins are [0, 1/M], (1/M, 2/M], ..., (1 - 1/M, 1]; ECE = sum over non-empty bins of (n_bin / N) * |accuracy - mean confidence|",
                     more="which = np.searchsorted(np.linspace(0, 1, M + 1)[1:-1], conf, side='left') gives each answer's bin")


# ----------------------------------------------------------------------------- 2. abstention threshold
def _threshold_variants(conf: list[float], right: list[int], target: float) -> list[tuple[float, str]]:
    import numpy as np

    from ..calibration import accuracy_coverage

    c, r = np.asarray(conf, float), np.asarray(right, float)
    curve = accuracy_coverage(c, r)
    ok = np.flatnonzero(curve.accuracy >= target)
    out = []
    if ok.size:
        out.append((float(curve.thresholds[ok[0]]), "you returned the *highest* threshold that reaches the target: it answers the "
                                                    "fewest questions; the point is the lowest one (most answers) that still reaches it"))
        out.append((float(curve.accuracy[ok[-1]]), "you returned the accuracy reached, not the threshold (a confidence) that reaches it"))
        below = c[c < curve.thresholds[ok[-1]]]
        if below.size:
            out.append((float(below.max()), "your threshold is the next confidence below the right one: answering means "
                                            "confidence >= threshold, so the threshold is the lowest confidence you still answer"))
    order = np.argsort(-c, kind="stable")
    acc_each = np.cumsum(r[order]) / np.arange(1, len(c) + 1)
    split = np.flatnonzero(acc_each >= target)
    if split.size:
        out.append((float(c[order][split[-1]]), "ties were split: two answers with the same confidence are answered or abstained "
                                                "on together, so only the accuracy after the *last* of equal confidences counts"))
    return out


def check_threshold(choose_threshold: Callable[..., Any]) -> Verdict:
    """``choose_threshold(confidences, correct, target)``: the lowest confidence threshold whose accuracy on
    these questions is at least ``target`` (``math.inf`` when none is); then measured on held-out questions."""
    import numpy as np

    from ..calibration import choose_threshold as reference

    def test(fn: Callable[..., Any]) -> bool | str:
        ties = ([0.9, 0.9, 0.9, 0.6, 0.6, 0.3], [1, 1, 0, 1, 0, 0])
        cases = [(*_outcomes(120, seed=11), 0.8), (*_outcomes(80, seed=12, power=1.0), 0.6), (*ties, 0.7), (*ties, 0.6),
                 ([0.5, 0.4, 0.2], [1, 1, 1], 0.0), ([0.5, 0.4], [1, 0], 0.5)]
        for conf, right, target in cases:
            got = _number(call_unchanged(fn, list(conf), list(right), target))
            want = reference(conf, right, target)
            if _same_number(got, want):
                continue
            where = f"with {len(conf)} questions and target {target}"
            for wrong, message in _threshold_variants(conf, right, target):
                if _same_number(got, wrong) and not _same_number(wrong, want):
                    return f"{where}: {message}"
            if want == math.inf:
                return f"{where}: no threshold reaches the target on these questions, so return math.inf (abstain on everything); got {got}"
            return f"{where}: got {got}, expected a different threshold; list the accuracy for each distinct confidence t of the answers with confidence >= t"
        impossible = _number(fn([0.9, 0.8], [0, 0], 0.5))
        if impossible != math.inf:
            return (f"when no threshold reaches the target (every answer wrong, target 0.5) return math.inf (abstain on everything), "
                    f"got {impossible}")
        # the point of it: chosen on one set of questions, measured on others the check makes now
        fit_c, fit_r = _outcomes(400, seed=21)
        held_c, held_r = np.asarray(_outcomes(400, seed=22)[0]), np.asarray(_outcomes(400, seed=22)[1])
        t = _number(fn(fit_c, fit_r, 0.8))
        answered = held_c >= t
        if not answered.any() or held_r[answered].mean() < 0.7:
            return f"the threshold {t} chosen for 80% accuracy gives far less on held-out questions; check the direction of the comparison"
        return True

    return run_check("abstention threshold", test, choose_threshold,
                     hint="answer = confidence >= threshold; for each distinct confidence, highest first, compute the accuracy of the answers at or above it",
                     more="sort by confidence, descending; cumulative hits / cumulative count gives the accuracy; keep only the last position of each run of equal confidences; return the smallest confidence whose accuracy >= target")


# ----------------------------------------------------------------------------- 3. Cohen's kappa
def _kappa_variants(a: list[Any], b: list[Any]) -> list[tuple[float, str]]:
    n = len(a)
    labels = set(a) | set(b)
    p_o = sum(x == y for x, y in zip(a, b)) / n
    out = [(p_o, "you returned the observed agreement p_o; kappa corrects it for chance: (p_o - p_e) / (1 - p_e)")]
    top = max(labels, key=str)
    for p_e, message in (
        (0.5, "chance agreement p_e is not always 1/2: it is the sum over labels of p_a(label) * p_b(label), from each grader's own label rates"),
        (sum((a.count(c) / n) ** 2 for c in labels), "p_e uses only the first grader's label rates; it multiplies the two graders' rates, p_a(label) * p_b(label)"),
        ((a.count(top) / n) * (b.count(top) / n), "p_e counts only one label; add p_a(label) * p_b(label) over every label (both 'yes' and 'no')"),
    ):
        if p_e != 1:
            out.append(((p_o - p_e) / (1 - p_e), message))
    return out


def check_kappa(cohen_kappa: Callable[..., Any]) -> Verdict:
    """``cohen_kappa(a, b)``: Cohen's kappa of two graders' labels for the same items."""
    import numpy as np

    from ..judging import cohen_kappa as reference

    def test(fn: Callable[..., Any]) -> bool | str:
        rng = np.random.default_rng(5)
        truth = rng.integers(0, 2, 60).tolist()
        noisy = [x if rng.uniform() < 0.75 else 1 - x for x in truth]
        cases = [(truth, noisy), ([True, True, True, False, False, True], [True, False, True, False, True, True]),
                 (["correct"] * 7 + ["incorrect"] * 3, ["correct"] * 9 + ["incorrect"]),
                 ([1, 0, 1, 0], [0, 1, 0, 1]), ([1, 1, 0, 0, 1], [1, 1, 0, 0, 1])]
        for a, b in cases:
            got = _number(call_unchanged(fn, list(a), list(b)))
            want = reference(a, b)
            if _same_number(got, want, 1e-9):
                continue
            where = f"for {len(a)} items labelled {sorted(set(a) | set(b), key=str)}"
            for wrong, message in _kappa_variants(a, b):
                if _same_number(got, wrong, 1e-9):
                    return f"{where}: {message}"
            return f"{where}: got {got:.4f}, expected {want:.4f}; kappa = (p_o - p_e) / (1 - p_e)"
        same = _number(call_unchanged(fn, [1, 1, 1], [1, 1, 1]))
        if not math.isnan(same):
            return ("when both graders give every item the same single label, chance agreement p_e is 1 and kappa is 0/0: "
                    f"return float('nan') (as scikit-learn does), got {same}")
        return True

    return run_check("cohen kappa", test, cohen_kappa,
                     hint="p_o = share of items with the same label; p_e = sum over labels of (share of a with it) * (share of b with it)")


# ----------------------------------------------------------------------------- 4. position-debiased pairwise judge
class _Judge:
    """A stand-in judge: ``prefers(first, second)`` -> "A" or "B"; counts its calls."""

    def __init__(self, prefers: Callable[[str, str], str]) -> None:
        self.prefers, self.calls = prefers, []

    def __call__(self, question: str, first: str, second: str) -> str:
        self.calls.append((first, second))
        return self.prefers(first, second)


def check_debiased_pair(debiased_pair: Callable[..., Any]) -> Verdict:
    """``debiased_pair(judge, question, a, b)``: judge both orders; "A", "B" or "tie"."""
    from ..judging import debiased_pair as reference

    judges = {
        "always picks the first answer shown": lambda first, second: "A",
        "always picks the second answer shown": lambda first, second: "B",
        "prefers the longer answer": lambda first, second: "A" if len(first) > len(second) else "B",
        "prefers 'Paris'": lambda first, second: "A" if first == "Paris" else "B",
    }
    pairs = [("Paris", "Lyon, the second city of France"), ("Lyon, the second city of France", "Paris"), ("Nice", "Paris")]

    mistakes = [
        (lambda f, s: f, "you returned the first order's verdict; a verdict counts only when the swapped order agrees"),
        (lambda f, s: "A" if f == s == "A" else "B" if f == s == "B" else "tie",
         "in the swapped call b is shown first, so its verdict 'A' means b: map it back before comparing the two verdicts"),
        (lambda f, s: "A" if (f, s) == ("A", "B") else "B" if (f, s) == ("B", "A") else "A",
         "when the two orders disagree the judge preferred a position, not an answer: that is a 'tie', not a win for a"),
    ]
    question = "What is the capital of France?"

    def test(fn: Callable[..., Any]) -> bool | str:
        got, want, seen = [], [], []
        for name, prefers in judges.items():
            for a, b in pairs:
                judge = _Judge(prefers)
                answer = fn(judge, question, a, b)
                where = f"with a judge that {name}, a={a!r}, b={b!r}"
                if len(judge.calls) < 2:
                    return f"{where}: the judge was called {len(judge.calls)} time(s); call it twice, once with (a, b) and once with (b, a)"
                if len(judge.calls) > 2:
                    return f"{where}: the judge was called {len(judge.calls)} times; twice is enough (each call costs a model run)"
                if sorted(judge.calls) != sorted([(a, b), (b, a)]):
                    return f"{where}: the judge saw {judge.calls}; it should see the pair once in each order"
                if answer not in ("A", "B", "tie"):
                    return f"{where}: return 'A', 'B' or 'tie', got {answer!r}"
                got.append(answer)
                want.append(reference(_Judge(prefers), question, a, b))
                seen.append((where, prefers(a, b), prefers(b, a)))
        if got == want:
            return True
        for mistake, message in mistakes:
            if got == [mistake(f, s) for _, f, s in seen]:
                return message
        i = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
        where, f, s = seen[i]
        return f"{where}: the verdicts were {f!r} (a first) and {s!r} (b first); you returned {got[i]!r}, expected {want[i]!r}"

    return run_check("debiased pair", test, debiased_pair,
                     hint="call judge(question, a, b) and judge(question, b, a); 'A' then 'B' means a wins both times, 'B' then 'A' means b does")
