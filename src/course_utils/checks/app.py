"""Checks for lab 11 (a local assistant app): word error rate, a validator for synthetic records,
and a streaming chat handler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..backends.base import GenerationResult, StreamChunk
from ..speech import wer
from ..synth import validate_record
from ..timing import Timings
from . import NotDone, Verdict, run_check

WER_CASES = (
    ("what is the capital of germany", "what is the capital of germany"),  # perfect: 0
    ("what is the capital of germany", "what is a capital of germany"),  # 1 substitution / 6
    ("the cat sat on the mat", "the cat sat on mat"),  # 1 deletion
    ("turn the lights off", "turn the lights off now please"),  # 2 insertions: 0.5
    ("Hello, World!", "hello world"),  # case and punctuation do not count
    ("one two three", "three two one"),  # 2 substitutions
    ("a b c d", ""),  # everything deleted: 1.0
    ("good morning", "good good morning morning everyone"),  # 3 insertions / 2 words: WER above 1
)

PASSAGE = "The Local LLM Lab meets in room 4.12 every Thursday. Each session lasts two hours."
RECORD_CASES = (  # (record, should it pass?, what it tests)
    ({"question": "Where does the Local LLM Lab meet?", "answer": "room 4.12"}, True, "a good record"),
    ({"question": "How long does each session last?", "answer": "Two hours"}, True, "case does not matter"),
    ({"question": "Where does the lab meet?", "answer": "the library"}, False, "answer not in the passage"),
    ({"question": "Where does the lab meet", "answer": "room 4.12"}, False, "no question mark"),
    ({"question": "Does the lab meet in room 4.12?", "answer": "room 4.12"}, False, "the question gives the answer away"),
    ({"question": "Where does the lab meet?"}, False, "no answer field"),
    ({"question": "Where does the lab meet?", "answer": 412}, False, "answer is not a string"),
    ({"question": "When?", "answer": "Thursday"}, False, "question shorter than 10 characters (schema)"),
)


def check_wer(word_error_rate: Callable[[str, str], float]) -> Verdict:
    """``word_error_rate(reference, hypothesis)``: (S + D + I) / reference words, case and punctuation ignored."""

    def test(fn: Callable[[str, str], float]) -> bool | str:
        for ref, hyp in WER_CASES:
            got = fn(ref, hyp)
            if got is None:
                raise NotDone
            want = wer(ref, hyp)
            if not isinstance(got, int | float) or abs(float(got) - want) > 1e-9:
                return f"word_error_rate({ref!r}, {hyp!r}) should be {want:.4f}, got {got!r}"
        return True

    return run_check("word error rate", test, word_error_rate,
                     hint="normalise (lower case, drop punctuation, split on spaces), then fill a table d[i][j] = fewest edits "
                          "turning the first i reference words into the first j hypothesis words; divide d[-1][-1] by the reference length")


def check_validator(is_valid: Callable[[dict[str, Any], str], bool]) -> Verdict:
    """``is_valid(record, passage)``: True only for a record the course's validator accepts."""

    def test(fn: Callable[[dict[str, Any], str], bool]) -> bool | str:
        for record, expected, why in RECORD_CASES:
            assert (not validate_record(record, PASSAGE)) == expected, why  # the cases themselves are right
            got = fn(dict(record), PASSAGE)
            if got is None:
                raise NotDone
            if bool(got) != expected:
                return f"{record} should be {'accepted' if expected else 'rejected'} ({why}), your function said {got!r}"
        return True

    return run_check("record validator", test, is_valid,
                     hint="jsonschema.validate(record, QA_SCHEMA) inside try/except jsonschema.ValidationError, then compare "
                          "normalize_text(answer) with normalize_text(passage) and the question")


class ScriptedBackend:
    """A stand-in backend that streams fixed pieces of text (so the check is fast and exact)."""

    name = "scripted"

    def __init__(self, pieces: tuple[str, ...] = ("The", " capital", " is", " Berlin", ".")) -> None:
        self.pieces = pieces
        self.calls: list[list[dict[str, str]]] = []

    def chat_stream(self, messages: Any, **options: Any) -> Iterator[StreamChunk]:
        self.calls.append([dict(m) for m in messages])
        for piece in self.pieces:
            yield StreamChunk(piece)
        text = "".join(self.pieces)
        timings = Timings(0.1, 0.01, 0.14, 10, len(self.pieces))
        yield StreamChunk("", done=True, result=GenerationResult(text, 10, len(self.pieces), "stop", timings, self.name))


def check_stream_handler(stream_reply: Callable[..., Iterator[str]], backend: Any = None) -> Verdict:
    """``stream_reply(backend, message, history)`` yields the reply so far (growing), one update per piece;
    an empty message yields one line starting with "⚠️" and does not call the model.
    ``backend``: also compare with a real backend's greedy answer."""

    def test(fn: Callable[..., Iterator[str]]) -> bool | str:
        fake = ScriptedBackend()
        history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
        updates = fn(fake, "What is the capital of Germany?", history)
        if updates is None:
            raise NotDone
        updates = list(updates)
        want = ["The", "The capital", "The capital is", "The capital is Berlin", "The capital is Berlin."]
        if updates != want:
            return f"expected the growing reply {want}, got {updates[:6]}"
        sent = fake.calls[-1] if fake.calls else []
        if [m.get("content") for m in sent][-3:] != ["Hi", "Hello!", "What is the capital of Germany?"]:
            return "send the history, then the new message as the last user message"
        fake.calls.clear()
        empty = list(fn(fake, "   ", []))
        if len(empty) != 1 or not str(empty[0]).startswith("⚠️"):
            return f"an empty message should yield one warning starting with '⚠️', got {empty!r}"
        if fake.calls:
            return "an empty message must not reach the model"
        if backend is not None:
            question = "What is the capital of Germany?"
            real = list(fn(backend, question, []))
            reference = backend.chat([{"role": "user", "content": question}], max_tokens=64, temperature=0.0).text
            if not real or real[-1].strip() != reference.strip():
                return f"with the real model the last update should be {reference!r} (greedy, max_tokens=64), got {(real or [''])[-1]!r}"
        return True

    return run_check("streaming handler", test, stream_reply,
                     hint="if not message.strip(): yield '⚠️ ...'; return. Otherwise loop over backend.chat_stream(history + [user message], "
                          "max_tokens=64, temperature=0.0), add each chunk.text to the reply and yield the reply so far")
