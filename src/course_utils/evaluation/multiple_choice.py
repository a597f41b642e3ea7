"""Multiple-choice benchmarks scored by log-likelihood, the way lm-evaluation-harness does it (lesson 09).

The model never *writes* an answer. Each choice is appended to the question as a continuation, and
the log-probabilities of the continuation's tokens are summed (EleutherAI's lm-evaluation-harness,
which the Open LLM Leaderboard ran, works so):

* **acc**: the choice with the largest summed log-probability is the model's answer;
* **acc_norm**: the same after dividing each sum by the length of the *answer text* in characters,
  so that long answers are not punished for having more tokens to pay for. The harness divides by
  ``len(choice)`` of the answer as the data set gives it, **without** the space (its
  ``target_delimiter``) that joins it to the question, although that space is part of the scored
  continuation. Dividing by ``len(" " + choice)`` instead (one character more for every choice)
  changes the answer on a few items in a hundred: lesson 09 measures it.

Items are :class:`MCItem`; :func:`score_multiple_choice` scores a list of them with any model that
gives log-probabilities (:mod:`course_utils.evaluation.scorers`) and returns an :class:`MCResult`
with acc, acc_norm and their binomial standard errors.

>>> item = MCItem("Question: What is 2 + 2?\\nAnswer:", (" four", " twenty-two"), label=0)
>>> item.norm_lengths()          # what acc_norm divides by: the answers without the joining space
(4, 10)
>>> acc_prediction([-3.0, -5.0]), acc_norm_prediction([-3.0, -5.0], item.norm_lengths())
(0, 1)
>>> round(binomial_stderr(0.5, 100), 3)
0.05
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ContextOverflow, DataError
from .scorers import ChoiceGroup, make_scorer


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice question, ready to score.

    ``context`` is the text before the answer (the same for every choice), or one context per
    choice (WinoGrande's "partial scoring": the option goes into the context, the shared rest of
    the sentence is the continuation). ``choices`` are the continuations that are scored, each the
    ``delimiter`` (lm-eval's ``target_delimiter``, a space) followed by the answer text.
    ``prefix`` (few-shot examples, identical for many items) is put in front of the context; the
    scorer computes it once per distinct prefix.
    """

    context: str | tuple[str, ...]
    choices: tuple[str, ...]
    label: int
    id: str = ""
    prefix: str = ""
    delimiter: str = " "

    def __post_init__(self) -> None:
        name = f"item {self.id!r}" if self.id else "an item"
        if isinstance(self.choices, str) or not isinstance(self.choices, Sequence):
            raise DataError(f"{name}: choices must be a list of strings, got {type(self.choices).__name__} {self.choices!r:.40}",
                            fix='pass e.g. choices=(" Paris", " Rome")')
        object.__setattr__(self, "choices", tuple(self.choices))
        if not isinstance(self.context, str):
            if isinstance(self.context, Sequence) and all(isinstance(c, str) for c in self.context):
                object.__setattr__(self, "context", tuple(self.context))
            else:
                raise DataError(f"{name}: context must be a string (or one string per choice), got {type(self.context).__name__}",
                                fix='pass e.g. context="Question: ...\\nAnswer:"')
        if len(self.choices) < 2:
            raise DataError(f"{name} has {len(self.choices)} choice(s): picking the most likely of fewer than 2 measures nothing",
                            fix="give every item at least two choices")
        bad = [c for c in self.choices if not isinstance(c, str) or not c.strip()]
        if bad:
            raise DataError(f"{name} has an empty or non-text choice {bad[0]!r}", fix="every choice must be a non-empty string")
        if isinstance(self.label, bool) or not isinstance(self.label, int) or not 0 <= self.label < len(self.choices):
            raise DataError(f"{name}: label {self.label!r} is not the index of one of its {len(self.choices)} choices",
                            fix=f"use a whole number from 0 to {len(self.choices) - 1}")
        self.contexts()  # one context, or one per choice

    def contexts(self) -> tuple[str, ...]:
        if isinstance(self.context, str):
            return (self.context,) * len(self.choices)
        if len(self.context) != len(self.choices):
            raise DataError(f"item {self.id!r} has {len(self.context)} contexts for {len(self.choices)} choices", fix="give one context, or one per choice")
        return tuple(self.context)

    def norm_lengths(self) -> tuple[int, ...]:
        """What acc_norm divides by: each answer's length in characters, without the delimiter
        that joins it to the context (lm-evaluation-harness's ``len(choice)``)."""
        d = self.delimiter
        return tuple(len(c) - len(d) if d and c.startswith(d) and len(c) > len(d) else len(c) for c in self.choices)


@dataclass(frozen=True)
class ItemScore:
    """The scores of one item's choices. ``logprobs[i]`` is the summed log-probability of choice i;
    ``n_chars`` and ``n_tokens`` measure each scored continuation; ``norm_chars`` is what acc_norm
    divides by (the answer without its joining space; ``n_chars`` when not given)."""

    id: str
    label: int
    logprobs: tuple[float, ...]
    n_chars: tuple[int, ...]
    n_tokens: tuple[int, ...]
    norm_chars: tuple[int, ...] | None = None

    @property
    def pred(self) -> int:
        return acc_prediction(self.logprobs)

    @property
    def pred_norm(self) -> int:
        return acc_norm_prediction(self.logprobs, self.norm_chars or self.n_chars)


@dataclass
class MCResult:
    """Accuracy of one model on one set of items, with binomial standard errors."""

    task: str
    items: list[ItemScore] = field(repr=False)
    chance: float
    seconds: float
    tokens: int  # tokens that went through the model (shared context counted once)
    scorer: str = ""

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def acc(self) -> float:
        return sum(s.pred == s.label for s in self.items) / self.n

    @property
    def acc_norm(self) -> float:
        return sum(s.pred_norm == s.label for s in self.items) / self.n

    @property
    def acc_stderr(self) -> float:
        return binomial_stderr(self.acc, self.n)

    @property
    def acc_norm_stderr(self) -> float:
        return binomial_stderr(self.acc_norm, self.n)

    @property
    def items_per_s(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")

    def row(self) -> dict[str, Any]:
        return {"task": self.task, "scorer": self.scorer, "n": self.n, "acc": self.acc, "±acc": self.acc_stderr,
                "acc_norm": self.acc_norm, "±acc_norm": self.acc_norm_stderr, "chance": self.chance,
                "seconds": self.seconds, "items/s": self.items_per_s, "tokens/s": self.tokens / self.seconds if self.seconds > 0 else float("inf")}


def acc_prediction(logprobs: Sequence[float]) -> int:
    """Index of the largest summed log-probability (the first one on a tie, like ``np.argmax``)."""
    if not len(logprobs):
        raise DataError("no choices to pick from", fix="give each item at least two choices")
    return max(range(len(logprobs)), key=lambda i: (logprobs[i], -i))


def acc_norm_prediction(logprobs: Sequence[float], lengths: Sequence[int]) -> int:
    """Index of the largest log-probability per character of the answer (lm-eval-harness acc_norm)."""
    if len(logprobs) != len(lengths) or any(n <= 0 for n in lengths):
        raise DataError("need one positive length per choice", fix="pass len(answer) for each choice")
    return acc_prediction([lp / n for lp, n in zip(logprobs, lengths)])


def binomial_stderr(p: float, n: int) -> float:
    """Standard error of an accuracy ``p`` measured on ``n`` independent items: sqrt(p(1-p)/n).

    (lm-evaluation-harness reports the sample version, with n-1: larger by sqrt(n/(n-1)).)
    """
    if n < 1 or not 0 <= p <= 1:
        raise DataError(f"need 0 <= p <= 1 and n >= 1, got p={p}, n={n}", fix="pass an accuracy and the number of items")
    return math.sqrt(p * (1 - p) / n)


def encode_pair(tokenize: Callable[[str], list[int]], context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) the way lm-evaluation-harness makes them.

    Trailing spaces of the context move to the continuation; the continuation's ids are what
    tokenizing the *whole* text adds after the context's ids (so "Answer:" + " Paris" gives the
    ids the model would really see: " Paris" is one token, not a space and then "Paris").

    >>> encode_pair(lambda s: [ord(c) for c in s], "Answer: ", "Paris")   # a toy tokenizer: one id per character
    ([65, 110, 115, 119, 101, 114, 58], [32, 80, 97, 114, 105, 115])
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    ctx = list(tokenize(context))
    cont = list(tokenize(context + continuation))[len(ctx):]
    if not ctx or not cont:
        raise DataError(f"empty context or continuation ({context[-30:]!r} + {continuation[:30]!r})", fix="give every item a context and non-empty choices")
    return ctx, cont


def score_multiple_choice(model: Any, items: Sequence[MCItem], tokenizer: Any = None, *, task: str = "", **kwargs: Any) -> MCResult:
    """Score ``items`` with any model :func:`~course_utils.evaluation.scorers.make_scorer` accepts
    (a backend, a transformers model + tokenizer, a GGUF path, a scorer); acc and acc_norm with
    standard errors.

    >>> result = score_multiple_choice(backend, load_task("arc_easy", limit=20).items)   # doctest: +SKIP
    >>> result.acc, result.acc_stderr                                                     # doctest: +SKIP
    """
    items = _checked_items(items)
    scorer = make_scorer(model, tokenizer, **kwargs)
    tokens_before = scorer.tokens
    started = time.perf_counter()
    # tokenize; group choices that share a context; group items that share a prefix (few-shot examples)
    by_prefix: dict[str, list[ChoiceGroup]] = {}
    n_tokens: list[list[int]] = []
    for index, item in enumerate(items):
        lengths = []
        shared: dict[str, ChoiceGroup] = {}
        for c, (context, choice) in enumerate(zip(item.contexts(), item.choices, strict=True)):
            ctx, cont = encode_pair(scorer.tokenize, item.prefix + context, choice)
            if len(ctx) + len(cont) > scorer.max_len:
                raise ContextOverflow(f"item {item.id!r} needs {len(ctx) + len(cont)} tokens, the scorer holds {scorer.max_len}", fix="use fewer shots, or a larger n_ctx")
            group = shared.setdefault(context, ChoiceGroup(index, [], ctx, []))
            group.choice_idx.append(c)
            group.conts.append(cont)
            lengths.append(len(cont))
        n_tokens.append(lengths)
        by_prefix.setdefault(item.prefix, []).extend(shared.values())
    logprobs: list[list[float]] = [[0.0] * len(item.choices) for item in items]
    for prefix_ids, groups in _split_prefixes(by_prefix):
        for group, sums in zip(groups, scorer.score(prefix_ids, groups), strict=True):
            for c, value in zip(group.choice_idx, sums, strict=True):
                logprobs[group.item][c] = value
    seconds = time.perf_counter() - started
    scores = [ItemScore(item.id, item.label, tuple(lp), tuple(len(c) for c in item.choices), tuple(nt), item.norm_lengths())
              for item, lp, nt in zip(items, logprobs, n_tokens, strict=True)]
    chance = sum(1 / len(item.choices) for item in items) / len(items)
    return MCResult(task, scores, chance, seconds, scorer.tokens - tokens_before, scorer.name)


def _checked_items(items: Any) -> list[MCItem]:
    if isinstance(items, MCItem):
        raise DataError("got one MCItem, expected a list of them", fix="pass [item]")
    from .tasks import Task

    if isinstance(items, Task):
        items = items.items
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise DataError(f"items must be a list of MCItem, got {type(items).__name__}", fix="pass e.g. load_task('arc_easy', limit=20).items")
    if not items:
        raise DataError("no items to score", fix="pass at least one MCItem (e.g. load_task('arc_easy', limit=20).items)")
    wrong = next((x for x in items if not isinstance(x, MCItem)), None)
    if wrong is not None:
        raise DataError(f"items must be MCItem objects, got a {type(wrong).__name__}",
                        fix="build them with MCItem(context, choices, label) or load them with load_task(name).items")
    return list(items)


def _split_prefixes(by_prefix: dict[str, list[Any]]) -> list[tuple[list[int], list[Any]]]:
    """(prefix ids, groups with the prefix cut off their contexts) for each distinct prefix.

    The prefix's tokens are the common start of its items' contexts: tokenizing the prefix alone
    can differ at its end ("\\n\\n" is one token at the end of a text, two before more text).
    """
    batches = []
    for prefix, groups in by_prefix.items():
        n = _common_prefix_len([g.ctx for g in groups]) if prefix else 0
        n = min([n] + [len(g.ctx) - 1 for g in groups])
        batches.append((groups[0].ctx[:n], [ChoiceGroup(g.item, g.choice_idx, g.ctx[n:], g.conts) for g in groups]))
    return batches


def _common_prefix_len(rows: list[list[int]]) -> int:
    first, n = rows[0], len(rows[0])
    for row in rows[1:]:
        n = min(n, len(row))
        n = next((i for i in range(n) if row[i] != first[i]), n)
    return n
