"""LLM-as-judge: a model grades answers with a rubric, its verdict forced into JSON (lesson 14).

Two ways to judge (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena"):

* **pointwise, reference-guided**: the question, a reference answer and a candidate go in; a verdict
  ``{"verdict": "correct"}`` or ``{"verdict": "incorrect"}`` comes out (:func:`judge_answer`);
* **pairwise**: two answers go in; ``{"better": "A"}`` or ``{"better": "B"}`` comes out
  (:func:`judge_pair`).

The verdict is forced by a JSON schema: llama.cpp turns it into a grammar and masks every token that
would leave it, so the reply always parses. That constrains the *format*, not the judgement.

Judges have known biases, each named in the literature and measured in lesson 14 on the small model:
**position** (the first of two answers wins more often; Zheng et al. 2023, Wang et al. 2023 "Large
Language Models are not Fair Evaluators"), **length/verbosity** (longer answers look better; Zheng et
al. 2023, Saito et al. 2023 "Verbosity Bias in Preference Labeling by Large Language Models") and
**self-preference** (a model favours text it wrote itself; Zheng et al. 2023's "self-enhancement",
Panickssery et al. 2024 "LLM Evaluators Recognize and Favor Their Own Generations").
:func:`debiased_pair` removes the position bias the way Zheng et al. propose: judge both orders and
call it a tie when the two disagree.

Agreement with another grader (exact match, a person) is measured by Cohen's kappa (Cohen 1960),
agreement corrected for what two graders with those label rates would reach by chance:

>>> cohen_kappa([1, 1, 0, 0], [1, 1, 0, 0]), cohen_kappa([1, 0, 1, 0], [1, 1, 0, 0])
(1.0, 0.0)
>>> parse_verdict('{ "verdict" : "incorrect"}')
False
>>> debiased_pair(lambda q, first, second: "A", "q?", "x", "y")   # always picks the first: no real preference
'tie'

Tools layer (the judge talks to any course backend). Taught in lesson 14.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from .errors import DataError, InvalidOption
from .evaluation.intervals import Estimate

VERDICT_SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["correct", "incorrect"]}},
                  "required": ["verdict"]}
PAIR_SCHEMA = {"type": "object", "properties": {"better": {"type": "string", "enum": ["A", "B"]}}, "required": ["better"]}

RUBRIC = (
    "You grade answers to quiz questions. Compare the candidate answer with the reference answer.\n"
    "- correct: the candidate names the same person, place, thing, number or date as the reference, "
    "even in other words or with extra words.\n"
    "- incorrect: the candidate names something else, is vague, or does not answer.\n"
    "Reply with the verdict only."
)
PAIR_RUBRIC = (
    "You compare two answers to a quiz question. Pick the answer that is factually correct. "
    "If both are correct, pick the more precise one. Ignore the order and the length of the answers."
)
# Words that add length and nothing else: the same for every answer, so only the length changes.
PADDING = (" This answer is based on well-established facts that are widely documented in reliable "
           "reference works, and it has been carefully checked to be accurate and complete.")


def verdict_messages(question: str, reference: str, candidate: str) -> list[dict[str, str]]:
    """The chat messages of a pointwise, reference-guided judgement."""
    return [{"role": "system", "content": RUBRIC},
            {"role": "user", "content": f"Question: {question}\nReference answer: {reference}\nCandidate answer: {candidate}\n"
                                        "Is the candidate answer correct?"}]


def pair_messages(question: str, first: str, second: str) -> list[dict[str, str]]:
    """The chat messages of a pairwise judgement: ``first`` is shown as answer A, ``second`` as B."""
    return [{"role": "system", "content": PAIR_RUBRIC},
            {"role": "user", "content": f"Question: {question}\nAnswer A: {first}\nAnswer B: {second}\nWhich answer is better, A or B?"}]


def _field(text: str, key: str, allowed: Sequence[str]) -> str:
    try:
        value = json.loads(text)[key]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataError(f"the judge's reply is not JSON with a {key!r} field: {text[:80]!r}",
                        fix="force the format with json_schema= (llama.cpp or transformers), and give max_tokens room for the whole object") from None
    if value not in allowed:
        raise DataError(f"the judge's {key!r} is {value!r}, not one of {list(allowed)}", fix="force the format with json_schema=")
    return value


def parse_verdict(text: str) -> bool:
    """True for ``{"verdict": "correct"}``, False for ``"incorrect"``; anything else is a DataError."""
    return _field(text, "verdict", ("correct", "incorrect")) == "correct"


def parse_pair(text: str) -> str:
    """``"A"`` or ``"B"`` from ``{"better": ...}``."""
    return _field(text, "better", ("A", "B"))


def judge_answer(backend: Any, question: str, reference: str, candidate: str, max_tokens: int = 24) -> bool:
    """The judge's verdict on ``candidate`` (True = correct), greedy and grammar-forced."""
    reply = backend.chat(verdict_messages(question, reference, candidate), max_tokens=max_tokens, temperature=0.0, json_schema=VERDICT_SCHEMA)
    return parse_verdict(reply.text)


def judge_pair(backend: Any, question: str, first: str, second: str, max_tokens: int = 24) -> str:
    """Which of two answers the judge prefers: ``"A"`` (``first``) or ``"B"`` (``second``)."""
    reply = backend.chat(pair_messages(question, first, second), max_tokens=max_tokens, temperature=0.0, json_schema=PAIR_SCHEMA)
    return parse_pair(reply.text)


def debiased_pair(judge: Callable[[str, str, str], str], question: str, a: str, b: str) -> str:
    """Judge ``a`` vs ``b`` in both orders: ``"A"`` (a wins both), ``"B"`` (b wins both) or ``"tie"``.

    ``judge(question, first, second)`` returns ``"A"`` or ``"B"`` for the answer shown first or second.
    A verdict that flips with the order says more about the order than about the answers.
    """
    forward = judge(question, a, b)  # a shown as A
    backward = judge(question, b, a)  # a shown as B
    if forward not in ("A", "B") or backward not in ("A", "B"):
        raise DataError(f"a judge must return 'A' or 'B', got {forward!r} and {backward!r}", fix="parse the judge's reply with parse_pair")
    if forward == "A" and backward == "B":
        return "A"
    if forward == "B" and backward == "A":
        return "B"
    return "tie"


def pad_answer(answer: str) -> str:
    """The same answer, made longer with words that say nothing about the question."""
    return answer.rstrip() + ("" if answer.rstrip().endswith(".") else ".") + PADDING


# ----------------------------------------------------------------------------- agreement
def _labels(a: Sequence[Any], b: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    a, b = list(a), list(b)
    if not a or len(a) != len(b):
        raise DataError(f"need two label lists of the same, non-zero length, got {len(a)} and {len(b)}", fix="label the same items with both graders")
    return a, b


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's kappa: (p_o - p_e) / (1 - p_e), p_o the observed agreement, p_e the agreement two
    graders with these label rates reach by chance. 1 = perfect, 0 = chance, < 0 = worse than chance;
    nan when chance agreement is already 1 (both graders give one and the same label to everything),
    as scikit-learn's ``cohen_kappa_score``.
    """
    a, b = _labels(a, b)
    n = len(a)
    p_o = sum(x == y for x, y in zip(a, b)) / n
    p_e = sum((a.count(c) / n) * (b.count(c) / n) for c in set(a) | set(b))
    return float("nan") if p_e == 1 else (p_o - p_e) / (1 - p_e)


def kappa_interval(a: Sequence[Any], b: Sequence[Any], n_boot: int = 2000, seed: int = 0) -> Estimate:
    """Cohen's kappa with a bootstrap standard error: the items are resampled with replacement
    ``n_boot`` times (resamples where kappa is undefined are left out)."""
    import numpy as np

    a, b = _labels(a, b)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise InvalidOption(f"n_boot must be a whole number >= 2, got {n_boot!r}", fix="pass e.g. n_boot=2000")
    rng = np.random.default_rng(seed)
    n = len(a)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        k = cohen_kappa([a[i] for i in idx], [b[i] for i in idx])
        if not math.isnan(k):
            draws.append(k)
    stderr = float(np.std(draws, ddof=1)) if len(draws) >= 2 else float("nan")
    return Estimate(cohen_kappa(a, b), stderr, n)
