"""Yes/no answers read from the model's probabilities, with or without a retrieved passage (lesson 07).

Asked to *write* "yes" or "no", SmolLM2-135M-Instruct says "No" to nearly everything, so its answers
say nothing about whether it read the passage. Instead we read its next-token probabilities, the
way lesson 09 scores BoolQ: one forward pass per prompt ``passage / Question: ...? / Answer:`` gives
log p(" yes") and log p(" no"), and their difference, the **log-odds** of yes, is the model's answer
(yes when it is above a threshold). Two ways to set the threshold without looking at the evaluated
questions, since a small model's log-odds lean to one side whatever the question:

* **content-free calibration** (Zhao et al., 2021, "Calibrate Before Use"): the log-odds of the same
  prompt with "N/A" (and "" and "[MASK]") in place of the question and the passage measure the
  prompt's own bias; that mean is the threshold (for two answers, dividing the probabilities by the
  content-free ones is subtracting its log-odds);
* a threshold chosen on a **calibration split**: other questions, on other passages, whose answers
  we may look at (:func:`best_threshold`).

Scores are cached on disk, keyed by the model and every prompt (:class:`YesNoScorer`), and the
comparison of two settings on the same questions is paired (:func:`paired_difference`).

>>> print(yes_no_prompt("is the nile in africa", "The Nile is a river in Africa."))
The Nile is a river in Africa.
Question: is the nile in africa?
Answer:
>>> best_threshold([-2.0, -1.0, 0.5, 2.0], [False, False, True, True])
-0.25
>>> diff = paired_difference([1, 1, 1, 0], [0, 1, 0, 0])
>>> round(diff.mean, 2), round(diff.stderr, 2)
(0.5, 0.29)

Taught in: lesson 07 (does retrieval help the model answer?).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InvalidOption
from ..evaluation import intervals
from ..evaluation.intervals import Z95
from ..paths import atomic_write_text

CONTENT_FREE = ("N/A", "", "[MASK]")  # Zhao et al. (2021) average several content-free inputs
ANSWERS = (" no", " yes")  # scored continuations of "Answer:", as lm-evaluation-harness scores BoolQ


def yes_no_prompt(question: str, passage: str | None = None) -> str:
    """The BoolQ prompt of lesson 09 (lm-evaluation-harness's): the passage (if any), the question, "Answer:"."""
    if not isinstance(question, str):
        raise DataError(f"a question must be text, got {type(question).__name__}", fix="pass the question as a string")
    q = question.strip().rstrip("?") + "?"
    return (f"{passage.strip()}\n" if passage is not None else "") + f"Question: {q}\nAnswer:"


def content_free_prompts(with_passage: bool) -> list[str]:
    """The prompt with each content-free input in place of the question (and of the passage)."""
    return [yes_no_prompt(x, x if with_passage else None) for x in CONTENT_FREE]


def truncate_tokens(text: str, tokenizer: Any, n_tokens: int) -> str:
    """The first ``n_tokens`` tokens of ``text`` (all of it when it is shorter): shorter prompts are read faster."""
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 1:
        raise InvalidOption(f"n_tokens={n_tokens!r} must be a whole number >= 1", fix="use e.g. n_tokens=96")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= n_tokens else tokenizer.decode(ids[:n_tokens]).strip()


class YesNoScorer:
    """log p(" yes") − log p(" no") after each prompt, from a transformers model, cached on disk.

    One forward pass per prompt: both answers are one token, so only the last position's
    next-token distribution is needed (lesson 09's scorer runs the output layer there only).
    ``cache_dir=None`` keeps nothing on disk. The cache file's name is a hash of ``name`` (the
    model and its precision) and of every prompt, so another model or other prompts never reuse it.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str, cache_dir: str | os.PathLike | None = None, batch_tokens: int = 2048) -> None:
        from ..evaluation.scorers import HFScorer

        self.scorer = HFScorer(model, tokenizer, batch_items=32, batch_tokens=batch_tokens)
        self.tokenizer, self.name = tokenizer, name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.scored = 0  # prompts that went through the model (not read from the cache)

    def cache_path(self, prompts: Sequence[str]) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha1(f"{self.name}|{ANSWERS}".encode())
        for p in prompts:
            digest.update(b"\x00" + p.encode("utf-8"))
        return self.cache_dir / f"yes-no-{digest.hexdigest()[:16]}.json"

    def log_odds(self, prompts: Sequence[str]) -> np.ndarray:
        """The log-odds of " yes" over " no" after each prompt (positive: the model leans to yes)."""
        if isinstance(prompts, str) or not prompts:
            raise DataError("log_odds needs a non-empty list of prompts", fix="pass e.g. [yes_no_prompt(question, passage)]")
        path = self.cache_path(prompts)
        if path is not None and path.exists():
            return self._read(path, len(prompts))
        from ..evaluation.multiple_choice import MCItem, score_multiple_choice

        result = score_multiple_choice(self.scorer, [MCItem(p, ANSWERS, 0) for p in prompts])
        values = np.array([s.logprobs[1] - s.logprobs[0] for s in result.items])
        self.scored += len(prompts)
        if path is not None:
            atomic_write_text(path, json.dumps({"model": self.name, "n": len(prompts), "log_odds": values.tolist()}))
        return values

    @staticmethod
    def _read(path: Path, n: int) -> np.ndarray:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            values = np.asarray(data["log_odds"], dtype=float)
        except (ValueError, KeyError, TypeError):
            raise DataError(f"the cached scores in {path} are damaged", fix=f"delete {path} and run again") from None
        if values.shape != (n,):
            raise DataError(f"the cached scores in {path} hold {values.size} values, expected {n}", fix=f"delete {path} and run again")
        return values


def best_threshold(log_odds: Sequence[float], gold: Sequence[bool]) -> float:
    """The threshold (answer yes above it) with the best accuracy on a calibration split.

    Candidates lie halfway between neighbouring scores, plus one below all (always yes) and one
    above all (always no); on a tie the one nearest 0 wins (the model's own decision rule).
    """
    scores, labels = np.asarray(log_odds, dtype=float), np.asarray(gold, dtype=bool)
    if scores.ndim != 1 or scores.shape != labels.shape or not len(scores):
        raise DataError(f"need one gold answer per score, got {scores.size} scores and {labels.size} answers",
                        fix="pass the calibration split's log-odds and its gold answers")
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
    accuracy = np.array([((scores > t) == labels).mean() for t in candidates])
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best]))]])


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of setting A minus that of setting B on the same questions, with its uncertainty."""

    mean: float
    stderr: float  # of the mean per-question difference (each in -1, 0, 1)
    n: int
    a_only: int  # questions A gets right and B wrong
    b_only: int

    @property
    def ci95(self) -> tuple[float, float]:
        return self.mean - Z95 * self.stderr, self.mean + Z95 * self.stderr


def paired_difference(a_correct: Sequence[bool | int], b_correct: Sequence[bool | int]) -> PairedDifference:
    """A paired comparison: the per-question differences of two settings, their mean and its standard error.

    Pairing removes the spread between easy and hard questions that two independent accuracies
    would carry, so the interval is narrower than comparing two separate standard errors
    (:func:`course_utils.evaluation.paired_difference` does the arithmetic; this adds the counts).
    """
    a, b = np.asarray(a_correct, dtype=float), np.asarray(b_correct, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise DataError(f"need two equally long lists of right/wrong (at least 2), got {a.size} and {b.size}",
                        fix="score both settings on the same questions")
    gain = intervals.paired_difference(before=b.tolist(), after=a.tolist())
    d = a - b
    return PairedDifference(gain.mean, gain.stderr, gain.n, int((d > 0).sum()), int((d < 0).sum()))
