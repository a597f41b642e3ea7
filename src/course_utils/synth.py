"""Synthetic data: let the local model write labelled examples, then keep only those that pass checks.

The pipeline (lesson 11)::

    records = generate_qa(backend, passages)          # JSON forced by a schema (llama.cpp grammar)
    records = generate_qa(backend, passages, strategy="spans")  # the answer must be a span of the passage
    unique, dropped = deduplicate(records)            # the same question twice teaches nothing new
    report = validate_all(unique)                     # schema + content checks, with reasons
    report.pass_rate, report.reasons                  # how much of what the model wrote is usable
    examples = to_lora_examples(report.valid)         # the format lesson 08's LoRA training reads

A JSON schema guarantees the *shape* of every record (it parses, it has a question and an answer)
but not that the content is right: the answer may not be in the passage, the question may give the
answer away. :func:`validate_record` checks those things and says why a record is rejected.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError, InvalidOption
from .paths import atomic_file

if TYPE_CHECKING:
    from .backends.base import Backend
    from .lora import Example

QA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 10, "maxLength": 160},
        "answer": {"type": "string", "minLength": 1, "maxLength": 60},
    },
    "required": ["question", "answer"],
    "additionalProperties": False,
}
SYSTEM_PROMPT = "You write one quiz question about a passage, and its answer: a few words copied exactly from the passage."
SPANS_PROMPT = "You pick a short answer from the passage and write the quiz question it answers."
# one worked example (few-shot): it shows the model the kind of question and the length of answer we want
EXAMPLE_PASSAGE = "The Eiffel Tower is a wrought-iron tower in Paris. It was completed in 1889 for the World's Fair."
EXAMPLE_RECORD = {"question": "In which year was the Eiffel Tower completed?", "answer": "1889"}


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


def short_passage(text: str, sentences: int = 2, max_chars: int = 400) -> str:
    """The first ``sentences`` sentences of ``text`` (at most ``max_chars``): less to read, faster to answer.

    >>> short_passage("One. Two is here. Three.", sentences=2)
    'One. Two is here.'
    """
    from .rag import sentence_spans

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


def generate_qa(backend: Backend, passages: Sequence[str], max_tokens: int = 64, temperature: float = 0.0,
                seed: int = 0, strategy: str = "free", progress: Callable[[int, int], Any] | None = None) -> list[dict[str, Any]]:
    """One question/answer record per passage, written by ``backend`` under a JSON schema.

    ``strategy="free"``: the model writes question and answer (:data:`QA_SCHEMA`). ``"spans"``: the
    answer must be one of the passage's names or numbers (:func:`spans_schema`), chosen first.
    Each record is ``{"question", "answer", "passage", "raw"}`` (``raw``: the model's exact output).
    Output that does not parse (possible when generation hits ``max_tokens`` mid-string) becomes a
    record with ``"error"`` instead of a question, so it is counted, not lost.
    """
    if isinstance(passages, str) or not passages:
        raise InvalidOption("passages must be a non-empty list of strings", fix="pass e.g. boolq_passages(10)")
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
        record: dict[str, Any] = {"passage": passage, "raw": reply.text}
        try:
            parsed = json.loads(reply.text)
            record.update(parsed if isinstance(parsed, dict) else {"error": "not a JSON object"})
        except json.JSONDecodeError as err:
            record["error"] = f"invalid JSON ({err.msg}; finish: {reply.finish_reason})"
        records.append(record)
        if progress is not None:
            progress(i + 1, len(passages))
    return records


# ============================================================================= cleaning
def normalize_text(text: str) -> str:
    """Lower case, punctuation removed, spaces collapsed: the form used to compare texts.

    >>> normalize_text("  What's the  CAPITAL of Germany?")
    'whats the capital of germany'
    """
    return " ".join(re.sub(r"[^\w\s]", "", str(text).lower()).split())


def deduplicate(records: Iterable[Mapping[str, Any]], key: str = "question") -> tuple[list[dict[str, Any]], int]:
    """Keep the first record of each normalised ``key`` (records without it are kept). Returns (kept, dropped)."""
    seen: set[str] = set()
    kept, dropped = [], 0
    for r in records:
        value = r.get(key)
        if isinstance(value, str):
            norm = normalize_text(value)
            if norm in seen:
                dropped += 1
                continue
            seen.add(norm)
        kept.append(dict(r))
    return kept, dropped


def validate_record(record: Any, passage: str | None = None, schema: Mapping[str, Any] = QA_SCHEMA) -> list[str]:
    """Why ``record`` is not a usable example (an empty list when it is).

    Checks, in order: the JSON schema (types, required fields, lengths); the answer has a letter or
    digit; the answer occurs in the passage (case and punctuation aside); the question ends with "?";
    the question does not contain the answer (it would give it away); the question is not copied from
    the passage or from the prompt's worked example. ``passage`` defaults to ``record["passage"]``.
    """
    import jsonschema

    if not isinstance(record, Mapping):
        return [f"not a JSON object ({type(record).__name__})"]
    if "error" in record:
        return [str(record["error"])]
    fields = {k: v for k, v in record.items() if k in schema.get("properties", {})}
    problems = [f"schema: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(fields)]
    if problems:
        return problems
    passage = passage if passage is not None else record.get("passage")
    if not isinstance(passage, str) or not passage.strip():
        return ["no passage to check the answer against"]
    question, answer = record["question"].strip(), record["answer"].strip()
    q, a, p = normalize_text(question), normalize_text(answer), normalize_text(passage)
    if not a:
        problems.append("answer has no letters or digits")
    elif f" {a} " not in f" {p} ":
        problems.append("answer not in passage")
    if not question.endswith("?"):
        problems.append("question does not end with '?'")
    if a and f" {a} " in f" {q} ":
        problems.append("question contains the answer")
    if q and (q in p or q == normalize_text(EXAMPLE_RECORD["question"])):
        problems.append("question copied from the text")
    return problems


@dataclass(frozen=True)
class ValidationReport:
    """Which records passed, which failed and why."""

    valid: list[dict[str, Any]]
    rejected: list[tuple[dict[str, Any], list[str]]]
    duplicates: int = 0
    reasons: Counter = field(default_factory=Counter)  # first problem of each rejected record -> count

    @property
    def total(self) -> int:
        return len(self.valid) + len(self.rejected) + self.duplicates

    @property
    def pass_rate(self) -> float:
        """Share of all generated records (duplicates included) that are usable."""
        return len(self.valid) / self.total if self.total else 0.0

    def summary(self) -> str:
        lines = [f"{len(self.valid)}/{self.total} records usable ({self.pass_rate:.0%}); {self.duplicates} duplicates"]
        lines += [f"  {n:>3} × {reason}" for reason, n in self.reasons.most_common()]
        return "\n".join(lines)


def validate_all(records: Iterable[Mapping[str, Any]], duplicates: int = 0) -> ValidationReport:
    """:func:`validate_record` on every record (``duplicates``: how many :func:`deduplicate` dropped)."""
    valid, rejected, reasons = [], [], Counter()
    for r in records:
        problems = validate_record(r)
        if problems:
            rejected.append((dict(r), problems))
            reasons[problems[0]] += 1
        else:
            valid.append(dict(r))
    if duplicates:
        reasons["duplicate question"] += duplicates
    return ValidationReport(valid, rejected, duplicates, reasons)


# ============================================================================= to the LoRA lesson
def lora_prompt(record: Mapping[str, Any]) -> str:
    """The instruction a fine-tuned model would see: the passage, then the question."""
    return f"Answer from the passage with a few words copied from it.\n\nPassage: {record['passage'].strip()}\n\nQuestion: {record['question'].strip()}"


def to_lora_examples(records: Sequence[Mapping[str, Any]]) -> list[Example]:
    """Valid records as :class:`course_utils.lora.Example` (prompt, response): what lesson 08 trains on."""
    from .lora import Example

    return [Example(lora_prompt(r), r["answer"].strip(), i) for i, r in enumerate(records)]


def write_jsonl(records: Sequence[Mapping[str, Any]], path: str | os.PathLike, test_fraction: float = 0.2) -> Path:
    """Write valid records in the JSONL format of ``data/lora_dates.jsonl`` (id, split, prompt, response),
    so that ``course_utils.lora.load_examples(split, path=...)`` reads them. Written atomically.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise InvalidOption(f"test_fraction must be in [0, 1), got {test_fraction}", fix="use e.g. 0.2")
    examples = to_lora_examples(records)
    n_test = int(round(len(examples) * test_fraction))
    path = Path(path)
    with atomic_file(path) as f:  # a failed write leaves neither a half file nor a stray .tmp
        for i, ex in enumerate(examples):
            split = "test" if i >= len(examples) - n_test else "train"
            f.write(json.dumps({"id": i, "split": split, "prompt": ex.prompt, "response": ex.response}, ensure_ascii=False) + "\n")
    return path
