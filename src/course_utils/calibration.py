"""Calibration: does a model's confidence in its answer match how often it is right?

A model is **calibrated** when, of all the answers it gives with confidence 0.8, about 80% are right.
Three tools, each written from scratch on plain numbers (lists or numpy arrays):

* :func:`reliability_bins` cuts [0, 1] into equal-width bins and gives, per bin, how many answers fell
  in it, their mean confidence and their accuracy: the data of a **reliability diagram**;
* :func:`expected_calibration_error` (ECE, Naeini et al. 2015; Guo et al. 2017, "On Calibration of
  Modern Neural Networks") averages each bin's gap |accuracy - confidence|, **weighted by the bin's
  share of the answers**;
* :func:`accuracy_coverage` and :func:`choose_threshold`: answer only when the confidence reaches a
  threshold, abstain otherwise; a higher threshold answers fewer questions (coverage) and, if the
  confidence means something, gets more of them right (selective prediction).

Bins follow scikit-learn's ``calibration_curve(strategy="uniform")``: the first bin is [0, 1/M], the
others (lo, hi], so a confidence of exactly 1.0 lands in the last bin, never outside. The lesson
checks that both give the same bins.

>>> conf = [0.95, 0.9, 0.2, 0.3, 1.0]
>>> right = [1, 1, 0, 1, 1]
>>> [(b.count, round(b.accuracy, 2)) for b in reliability_bins(conf, right, n_bins=2)]
[(2, 0.5), (3, 1.0)]
>>> round(expected_calibration_error(conf, right, n_bins=2), 4)   # 2/5 * |0.5 - 0.25| + 3/5 * |1.0 - 0.95|
0.13
>>> accuracy_coverage(conf, right).coverage.tolist()
[0.2, 0.4, 0.6, 0.8, 1.0]

Tools layer (numpy only). Taught in lesson 14.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DataError, InvalidOption


# ----------------------------------------------------------------------------- input checks
def as_outcomes(confidences: Sequence[float] | Any, correct: Sequence[Any] | Any) -> tuple[np.ndarray, np.ndarray]:
    """Confidences as floats in [0, 1] and outcomes as 0/1, checked to be the same, non-zero length.

    >>> as_outcomes([0.5, 1], [True, False])
    (array([0.5, 1. ]), array([1., 0.]))
    """
    conf = np.asarray(confidences, dtype=float).reshape(-1)
    right = np.asarray(correct, dtype=float).reshape(-1)
    if conf.size == 0 or conf.size != right.size:
        raise DataError(f"need one outcome per confidence, got {conf.size} confidences and {right.size} outcomes",
                        fix="pass two lists of the same, non-zero length")
    if not np.all((conf >= 0) & (conf <= 1)):
        raise DataError("confidences must be probabilities in [0, 1]", fix="pass probabilities, e.g. math.exp(logprob), not log-probabilities")
    if not np.all((right == 0) | (right == 1)):
        raise DataError("outcomes must be 0/1 or True/False", fix="pass correct as booleans")
    return conf, right


def _check_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise InvalidOption(f"n_bins must be a whole number >= 1, got {n_bins!r}", fix="pass e.g. n_bins=10")
    return int(n_bins)


# ----------------------------------------------------------------------------- reliability diagram
@dataclass(frozen=True)
class Bin:
    """One bin of a reliability diagram."""

    lo: float
    hi: float
    count: int
    confidence: float  # mean confidence of the answers in the bin (nan when empty)
    accuracy: float  # fraction right (nan when empty)

    @property
    def gap(self) -> float:
        """accuracy - confidence: negative = over-confident."""
        return self.accuracy - self.confidence


def bin_index(confidences: Sequence[float] | Any, n_bins: int = 10) -> np.ndarray:
    """Bin of each confidence: 0 for [0, 1/M], i for (i/M, (i+1)/M]; 1.0 goes to the last bin.

    >>> bin_index([0.0, 0.1, 0.10001, 0.95, 1.0], n_bins=10).tolist()
    [0, 0, 1, 9, 9]
    """
    edges = np.linspace(0.0, 1.0, _check_bins(n_bins) + 1)
    return np.searchsorted(edges[1:-1], np.asarray(confidences, dtype=float), side="left")


def reliability_bins(confidences: Sequence[float] | Any, correct: Sequence[Any] | Any, n_bins: int = 10) -> list[Bin]:
    """Every bin (empty ones too) with its count, mean confidence and accuracy."""
    conf, right = as_outcomes(confidences, correct)
    which = bin_index(conf, n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = []
    for i in range(n_bins):
        inside = which == i
        n = int(inside.sum())
        bins.append(Bin(float(edges[i]), float(edges[i + 1]), n,
                        float(conf[inside].mean()) if n else float("nan"), float(right[inside].mean()) if n else float("nan")))
    return bins


def expected_calibration_error(confidences: Sequence[float] | Any, correct: Sequence[Any] | Any, n_bins: int = 10) -> float:
    """ECE = sum over bins of (n_bin / N) * |accuracy_bin - confidence_bin|; 0 is perfectly calibrated.

    >>> expected_calibration_error([0.8] * 10, [1] * 8 + [0] * 2)   # says 80%, is right 80% of the time
    0.0
    >>> round(expected_calibration_error([0.9] * 10, [1] * 3 + [0] * 7), 6)   # says 90%, right 30%
    0.6
    """
    bins = reliability_bins(confidences, correct, n_bins)
    total = sum(b.count for b in bins)
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins if b.count))


def brier_score(confidences: Sequence[float] | Any, correct: Sequence[Any] | Any) -> float:
    """Mean squared error between confidence and outcome (Brier 1950): rewards being right *and* calibrated.

    >>> brier_score([1.0, 0.0], [1, 0]), brier_score([0.5, 0.5], [1, 0])
    (0.0, 0.25)
    """
    conf, right = as_outcomes(confidences, correct)
    return float(np.mean((conf - right) ** 2))


# ----------------------------------------------------------------------------- abstaining
@dataclass(frozen=True)
class CoverageCurve:
    """Answer only when confidence >= threshold: the coverage and accuracy each threshold gives."""

    thresholds: np.ndarray  # the distinct confidences, highest first
    coverage: np.ndarray  # fraction of questions answered
    accuracy: np.ndarray  # fraction right among those answered

    def at(self, threshold: float) -> tuple[float, float]:
        """(coverage, accuracy) when answering only at confidence >= ``threshold``."""
        keep = self.thresholds >= threshold
        if not keep.any():
            return 0.0, float("nan")
        i = int(np.flatnonzero(keep)[-1])
        return float(self.coverage[i]), float(self.accuracy[i])


def accuracy_coverage(confidences: Sequence[float] | Any, correct: Sequence[Any] | Any) -> CoverageCurve:
    """For each distinct confidence t (highest first): answer the questions with confidence >= t.

    Ties are kept together: a threshold cannot answer one of two equally confident answers.
    """
    conf, right = as_outcomes(confidences, correct)
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], right[order]
    answered = np.arange(1, conf.size + 1)
    hits = np.cumsum(right)
    last_of_tie = np.r_[conf[1:] != conf[:-1], True]  # the curve steps only where the confidence changes
    return CoverageCurve(conf[last_of_tie], answered[last_of_tie] / conf.size, hits[last_of_tie] / answered[last_of_tie])


def choose_threshold(confidences: Sequence[float] | Any, correct: Sequence[Any] | Any, min_accuracy: float) -> float:
    """The lowest threshold (most answers) whose accuracy on these answers is at least ``min_accuracy``.

    Fit it on one set of questions and measure it on another: on the set it was chosen on, it always
    looks as good as asked. Returns ``inf`` (abstain on everything) when no threshold reaches it.

    >>> choose_threshold([0.9, 0.8, 0.7, 0.2], [1, 1, 0, 0], min_accuracy=0.9)
    0.8
    """
    if not 0.0 <= float(min_accuracy) <= 1.0:
        raise InvalidOption(f"min_accuracy must be in [0, 1], got {min_accuracy!r}", fix="pass e.g. min_accuracy=0.5")
    curve = accuracy_coverage(confidences, correct)
    ok = np.flatnonzero(curve.accuracy >= min_accuracy)
    return float(curve.thresholds[ok[-1]]) if ok.size else float("inf")


def auroc(confidences: Sequence[float] | Any, correct: Sequence[Any] | Any) -> float:
    """How well the confidence *ranks* right answers above wrong ones: the probability that a random right
    answer has a higher confidence than a random wrong one (ties count half). 0.5 = no better than chance.

    >>> auroc([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]), auroc([0.5, 0.5], [1, 0])
    (1.0, 0.5)
    """
    conf, right = as_outcomes(confidences, correct)
    pos, neg = conf[right == 1], conf[right == 0]
    if not pos.size or not neg.size:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))
