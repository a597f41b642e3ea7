"""The model writes question/answer records about passages, under a JSON schema (lesson 11).

Three ways, from the loosest to the pipeline the lesson keeps:

* ``generate_qa(backend, passages)``: the model writes question *and* answer (:data:`QA_SCHEMA`);
* ``generate_qa(backend, passages, strategy="spans")``: the answer must be one of the passage's
  names or numbers (an ``enum`` in the schema), chosen by the model before the question;
* :func:`generate_for_answers`: the *code* picks the answer span (:func:`ranked_candidates`), the model
  only writes the question for it, under a schema whose pattern fixes the question's first words to
  fit the kind of answer (a year: "In which year" / "When"; a number: "How many" ...). A record that
  fails :func:`~course_utils.synth.validation.validate_record` is written again for the next answer
  span (generate, then filter, with retries), and every attempt is kept so the raw rate can be reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import DataError, InvalidOption
from .validation import (
    EXAMPLE_RECORD,
    NUMBER_WORDS,
    QA_SCHEMA,
    STOP_WORDS,
    normalize_text,
    validate_record,
)

if TYPE_CHECKING:
    from ..backends.base import Backend

SYSTEM_PROMPT = "You write one quiz question about a passage, and its answer: a few words copied exactly from the passage."
SPANS_PROMPT = "You pick a short answer from the passage and write the quiz question it answers."
QUESTION_PROMPT = "You write one quiz question about the passage whose answer is exactly the given answer. Never put the answer in the question."
# one worked example (few-shot): it shows the model the kind of question and the length of answer we want
EXAMPLE_PASSAGE = "The Eiffel Tower is a wrought-iron tower in Paris. It was completed in 1889 for the World's Fair."


def qa_messages(passage: str, answer_first: bool = False) -> list[dict[str, str]]:
    """The chat that asks for one question/answer pair about ``passage`` (with one worked example).

    ``answer_first``: the worked example shows the answer before the question (for :func:`spans_schema`).
    """
    if not isinstance(passage, str) or not passage.strip():
        raise DataError("the passage is empty", fix="pass some text to write a question about")
    example = {"answer": EXAMPLE_RECORD["answer"], "question": EXAMPLE_RECORD["question"]} if answer_first else EXAMPLE_RECORD
    return [
        {"role": "system", "content": SPANS_PROMPT if answer_first else SYSTEM_PROMPT},
        {"role": "user", "content": f"Passage: {EXAMPLE_PASSAGE}"},
        {"role": "assistant", "content": json.dumps(example)},
        {"role": "user", "content": f"Passage: {passage.strip()}"},
    ]


def question_messages(passage: str, answer: str) -> list[dict[str, str]]:
    """The chat that asks for the question whose answer is ``answer`` (one worked example first).

    >>> [m["role"] for m in question_messages("Ada Lovelace was born in 1815.", "1815")]
    ['system', 'user', 'assistant', 'user']
    """
    if not isinstance(passage, str) or not passage.strip():
        raise DataError("the passage is empty", fix="pass some text to write a question about")
    return [
        {"role": "system", "content": QUESTION_PROMPT},
        {"role": "user", "content": f"Passage: {EXAMPLE_PASSAGE}\nAnswer: {EXAMPLE_RECORD['answer']}"},
        {"role": "assistant", "content": json.dumps({"question": EXAMPLE_RECORD["question"]})},
        {"role": "user", "content": f"Passage: {passage.strip()}\nAnswer: {answer}"},
    ]


def short_passage(text: str, sentences: int = 2, max_chars: int = 400) -> str:
    """The first ``sentences`` sentences of ``text`` (at most ``max_chars``): less to read, faster to answer.

    >>> short_passage("One. Two is here. Three.", sentences=2)
    'One. Two is here.'
    """
    from ..rag import sentence_spans

    spans = sentence_spans(text)[:sentences]
    return (" ".join(text[a:b] for a, b in spans) if spans else text)[:max_chars].strip()


_CANDIDATE = re.compile(r"\b(?:[A-Z][\w'-]+(?:\s+(?:of|the|and|de|von|van)?\s*[A-Z][\w'-]+)*|\d[\d,.]*\d|\d)\b")
_NOT_ANSWERS = {"a", "all", "an", "and", "as", "but", "for", "he", "her", "his", "however", "if", "in", "it", "its", "of",
                "on", "she", "so", "that", "the", "there", "these", "they", "this", "those", "when", "while", "with"}


def answer_candidates(passage: str, limit: int = 12) -> list[str]:
    """Short spans of ``passage`` that make good answers: names (capitalised words) and numbers.

    >>> answer_candidates("Marie Curie was born in Warsaw in 1867. She won the Nobel Prize.")
    ['Marie Curie', 'Warsaw', '1867', 'Nobel Prize']
    """
    found: list[str] = []
    for m in _CANDIDATE.finditer(passage):
        span = m.group(0).strip()
        if span.lower() not in _NOT_ANSWERS and span not in found:
            found.append(span)
    return found[:limit]


def answer_kind(answer: str) -> str:
    """``"year"`` (1000-2099), ``"number"`` (any other digits, or a number word) or ``"name"``: what the question must ask for.

    >>> answer_kind("1867"), answer_kind("4.12"), answer_kind("two"), answer_kind("Warsaw")
    ('year', 'number', 'number', 'name')
    """
    if re.fullmatch(r"1\d{3}|20\d{2}", answer):
        return "year"
    return "number" if re.search(r"\d", answer) or answer.lower() in NUMBER_WORDS else "name"


# the first words a question may start with, for each kind of answer (the grammar allows nothing else)
QUESTION_STARTS = {
    "year": ("In which year", "In what year", "When"),
    "number": ("How many", "How much", "How long", "How old", "What number", "What percentage"),
    "name": ("Who", "What", "Which", "Where", "In which", "In what"),
}


def ranked_candidates(passage: str) -> list[str]:
    """:func:`answer_candidates` in the order the pipeline tries them: a span that occurs once before one
    that recurs (a recurring name is usually what the passage is about, and any question about the passage
    has to name it), and numbers before names. Only the passage is looked at.

    >>> ranked_candidates("Marie Curie was born in Warsaw in 1867. Marie Curie won the Nobel Prize.")
    ['1867', 'Warsaw', 'Nobel Prize', 'Marie Curie']
    >>> ranked_candidates("All biomass must be grown, dried and burned in two steps.")   # no names: words stand in
    ['two', 'biomass', 'burned']
    """
    candidates = answer_candidates(passage)
    if len(candidates) < 3:  # few names or numbers: number words, then the passage's longer words, are answers too
        candidates += [w for w in word_candidates(passage) if w not in candidates][: 3 - len(candidates)]
    text = f" {normalize_text(passage)} "
    return sorted(candidates, key=lambda c: (text.count(f" {normalize_text(c)} ") > 1, answer_kind(c) == "name"))


def word_candidates(passage: str) -> list[str]:
    """Single words of ``passage`` that can be answers when it names nothing: number words ("two"), then
    words of 6+ letters that are not stop words, each once, in the order they appear.

    >>> word_candidates("An integer is even or odd: one of two categories, whatever its parity.")
    ['one', 'two', 'integer', 'categories', 'whatever', 'parity']
    """
    words = list(dict.fromkeys(re.findall(r"[a-z]+", passage.lower())))
    numbers = [w for w in words if w in NUMBER_WORDS]
    return numbers + [w for w in words if len(w) >= 6 and w not in STOP_WORDS and w not in numbers]


def question_schema(answer: str) -> dict[str, Any]:
    """A schema for ``{"question": ...}``: a question that starts with words fitting ``answer`` and ends with "?".

    >>> print(question_schema("1867")["properties"]["question"]["pattern"])
    ^(In which year|In what year|When) [^"\\\\?\\n]{8,110}\\?$
    """
    starts = "|".join(QUESTION_STARTS[answer_kind(answer)])
    # no quote, backslash or newline inside (they would need escaping in JSON), one "?" at the end
    pattern = rf'^({starts}) [^"\\?\n]{{8,110}}\?$'
    return {"type": "object", "properties": {"question": {"type": "string", "pattern": pattern}},
            "required": ["question"], "additionalProperties": False}


def spans_schema(passage: str) -> dict[str, Any] | None:
    """:data:`QA_SCHEMA` with the answer restricted to :func:`answer_candidates` (answer first), or None
    when the passage has no candidate. The grammar then makes "the answer is in the passage" true by
    construction, and the model writes the question *for* the answer it picked."""
    candidates = answer_candidates(passage)
    if not candidates:
        return None
    return {"type": "object", "properties": {"answer": {"enum": candidates}, "question": QA_SCHEMA["properties"]["question"]},
            "required": ["answer", "question"], "additionalProperties": False}


STRATEGIES = ("free", "spans")


def _check_passages(passages: Sequence[str]) -> None:
    if isinstance(passages, str) or not passages:
        raise InvalidOption("passages must be a non-empty list of strings", fix="pass e.g. boolq_passages(10)")


def _parse(record: dict[str, Any], text: str, finish_reason: str | None) -> dict[str, Any]:
    """Add the fields of the model's JSON ``text`` to ``record`` (or an ``"error"`` when it does not parse)."""
    try:
        parsed = json.loads(text)
        record.update(parsed if isinstance(parsed, dict) else {"error": "not a JSON object"})
    except json.JSONDecodeError as err:
        record["error"] = f"invalid JSON ({err.msg}; finish: {finish_reason})"
    return record


def generate_qa(backend: Backend, passages: Sequence[str], max_tokens: int = 64, temperature: float = 0.0,
                seed: int = 0, strategy: str = "free", progress: Callable[[int, int], Any] | None = None) -> list[dict[str, Any]]:
    """One question/answer record per passage, written by ``backend`` under a JSON schema.

    ``strategy="free"``: the model writes question and answer (:data:`QA_SCHEMA`). ``"spans"``: the
    answer must be one of the passage's names or numbers (:func:`spans_schema`), chosen first.
    Each record is ``{"question", "answer", "passage", "raw"}`` (``raw``: the model's exact output).
    Output that does not parse (possible when generation hits ``max_tokens`` mid-string) becomes a
    record with ``"error"`` instead of a question, so it is counted, not lost.
    """
    _check_passages(passages)
    if strategy not in STRATEGIES:
        raise InvalidOption(f"unknown strategy {strategy!r}", fix=f"use one of: {', '.join(STRATEGIES)}")
    records = []
    for i, passage in enumerate(passages):
        schema = QA_SCHEMA if strategy == "free" else spans_schema(passage)
        if schema is None:
            records.append({"passage": passage, "raw": "", "error": "no candidate answers in the passage"})
            continue
        reply = backend.chat(qa_messages(passage, answer_first=strategy == "spans"), max_tokens=max_tokens,
                             temperature=temperature, seed=seed + i, json_schema=schema)
        records.append(_parse({"passage": passage, "raw": reply.text}, reply.text, reply.finish_reason))
        if progress is not None:
            progress(i + 1, len(passages))
    return records


@dataclass
class PipelineResult:
    """What :func:`generate_for_answers` delivered (one record per passage) and every attempt it made."""

    delivered: list[dict[str, Any]]  # per passage: the first attempt that passed, else the last one
    attempts: list[dict[str, Any]] = field(repr=False)  # every record written, with "passage_index" and "attempt"

    @property
    def first_attempts(self) -> list[dict[str, Any]]:
        """The record each passage got on its first try: what the pipeline gives without retries."""
        return [r for r in self.attempts if r["attempt"] == 1]

    @property
    def generations(self) -> int:
        """How many times the model was asked (a passage without candidates costs nothing)."""
        return sum("raw" in r and r["raw"] != "" for r in self.attempts)


def generate_for_answers(backend: Backend, passages: Sequence[str], tries: int = 3, max_tokens: int = 48,
                         temperature: float = 0.0, seed: int = 0,
                         progress: Callable[[int, int], Any] | None = None) -> PipelineResult:
    """For each passage: pick an answer span in code, let the model write its question, check it; retry.

    Answers are tried in :func:`ranked_candidates` order, at most ``tries`` per passage. An attempt counts
    as passed when :func:`validate_record` finds no problem *and* its question is not one already delivered
    (the same check :func:`~course_utils.synth.validation.deduplicate` makes afterwards).
    """
    _check_passages(passages)
    if isinstance(tries, bool) or not isinstance(tries, int) or tries < 1:
        raise InvalidOption(f"tries={tries!r} must be a whole number >= 1", fix="use e.g. tries=3")
    delivered, attempts, seen = [], [], set()
    for i, passage in enumerate(passages):
        candidates = ranked_candidates(passage)[:tries]
        if not candidates:
            record = {"passage": passage, "raw": "", "error": "no candidate answers in the passage", "passage_index": i, "attempt": 1}
            attempts.append(record)
            delivered.append(record)
            continue
        for attempt, answer in enumerate(candidates, start=1):
            reply = backend.chat(question_messages(passage, answer), max_tokens=max_tokens, temperature=temperature,
                                 seed=seed + i, json_schema=question_schema(answer))
            record = _parse({"passage": passage, "raw": reply.text}, reply.text, reply.finish_reason)
            record.update(answer=answer, passage_index=i, attempt=attempt)
            attempts.append(record)
            question = normalize_text(record.get("question", ""))
            if not validate_record(record) and question not in seen:
                seen.add(question)
                break
        delivered.append(record)
        if progress is not None:
            progress(i + 1, len(passages))
    return PipelineResult(delivered, attempts)
