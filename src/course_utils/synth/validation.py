"""Which generated records are usable, and why the others are not (lesson 11, lab 11).

A JSON schema guarantees the *shape* of every record (it parses, it has a question and an answer)
but not that the content is right. :func:`validate_record` checks the content, in this order, and
returns the problems it finds (an empty list: the record is usable):

1. the schema (types, required fields, lengths);
2. the answer has a letter or digit, and occurs in the passage as whole words (grounded);
3. the question ends with "?", does not contain the answer (it would give it away), is not copied
   from the passage or from the prompt's worked example;
4. the question is about the passage: it shares a content word (3+ letters, not a stop word; crudely
   stemmed, so "meet" matches "meets") with it;
5. the question asks for the kind of thing the answer is: "How many"/"How much" need a number,
   "When"/"In which year" a date or a year; "Who" and "What is the name" are not answered by a bare number.

>>> validate_record({"question": "How many moons does Mars have?", "answer": "Phobos"}, "Mars has two moons, Phobos and Deimos.")
['question asks for a number, the answer has none']
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

QA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 10, "maxLength": 160},
        "answer": {"type": "string", "minLength": 1, "maxLength": 60},
    },
    "required": ["question", "answer"],
    "additionalProperties": False,
}
# the prompt's worked example: a question copied from it is not a question about the passage
EXAMPLE_RECORD = {"question": "In which year was the Eiffel Tower completed?", "answer": "1889"}

STOP_WORDS = frozenset("""
    about above after again also and any are been before being between both but can could did does doing down during
    each for from further had has have having her here him his how into its itself just many more most much name named
    not now only other over own same she should some such than that the their them then there these they this those
    through too under until very was were what when where which while who whom whose why will with would you your
    """.split())  # noqa: SIM905 (a list literal of 90 words would be harder to read)
NUMBER_WORDS = frozenset("""
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
    eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion dozen
    """.split())  # noqa: SIM905
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december", "century", "decade", "spring", "summer", "autumn", "winter"]


def normalize_text(text: str) -> str:
    """Lower case, punctuation removed, spaces collapsed: the form used to compare texts.

    >>> normalize_text("  What's the  CAPITAL of Germany?")
    'whats the capital of germany'
    """
    return " ".join(re.sub(r"[^\w\s]", "", str(text).lower()).split())


def _stem(word: str) -> str:
    """A crude stem, enough to match "meets" with "meet" and "founded" with "found"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Stems of the words of 3+ letters that are not stop words: what a question must share with its passage.

    >>> sorted(content_words("When did the lab's members meet in Germany?"))
    ['germany', 'lab', 'meet', 'member']
    """
    return {_stem(w) for w in normalize_text(text).split() if len(w) >= 3 and w not in STOP_WORDS}


def type_mismatch(question: str, answer: str) -> str | None:
    """Why ``answer`` cannot answer ``question`` by its kind (None when it may)."""
    q = normalize_text(question)
    has_digit = bool(re.search(r"\d", answer)) or bool(set(normalize_text(answer).split()) & NUMBER_WORDS)
    if re.match(r"(how many|how much)\b", q) and not has_digit:
        return "question asks for a number, the answer has none"
    if re.match(r"(when|in (which|what) year|what year)\b", q) and not (has_digit or any(m in answer.lower() for m in _MONTHS)):
        return "question asks for a date, the answer is none"
    if re.match(r"who\b", q) and re.fullmatch(r"[\d\s,.]+", answer):
        return "question asks for a person, the answer is a number"
    if re.match(r"what (is|was|are|were) the names?\b", q) and re.fullmatch(r"[\d\s,.]+", answer):
        return "question asks for a name, the answer is a number"
    return None


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
    """Why ``record`` is not a usable example (an empty list when it is); see the module's docstring.

    ``passage`` defaults to ``record["passage"]``.
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
    if not content_words(question) & content_words(passage):
        problems.append("question shares no content word with the passage")
    mismatch = type_mismatch(question, answer)
    if mismatch:
        problems.append(mismatch)
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

    def interval(self) -> tuple[float, float]:
        """A 95% Wilson interval for the pass rate (how far it could be from the rate on many more passages)."""
        from ..evaluation.intervals import wilson_interval

        return wilson_interval(len(self.valid), self.total)

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


def clean(records: Iterable[Mapping[str, Any]]) -> ValidationReport:
    """Deduplicate, then validate: what a data set keeps of ``records``."""
    unique, duplicates = deduplicate(records)
    return validate_all(unique, duplicates=duplicates)
