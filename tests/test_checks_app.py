"""Lab 11's checks catch real mistakes: each is fed the wrong implementations a learner writes (each must fail
with a message naming the mistake), an unusual but correct implementation (must pass), a function that changes
its input, and a TODO stub (not done). The first failure never shows the next hint step."""

from __future__ import annotations

import re

import jsonschema
import numpy as np
import pytest
from verdicts import failed_with, todo

from course_utils.checks.app import (
    HELD_OUT_SEED,
    KEEP_TARGET,
    RECALL_TARGET,
    check_stream_handler,
    check_validator,
    check_wer,
    qa_records,
)
from course_utils.speech import wer
from course_utils.synth import QA_SCHEMA, normalize_text, validate_record


# ----------------------------------------------------------------------------- 1. word error rate
def words(text):
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def wer_with(norm=words, sub=1, denominator=lambda r, h: len(r), empty_raises=True):
    def word_error_rate(reference, hypothesis):
        r, h = norm(reference), norm(hypothesis)
        if not r and empty_raises:
            raise ValueError("the reference has no words")
        d = [[i + j if i * j == 0 else 0 for j in range(len(h) + 1)] for i in range(len(r) + 1)]
        for i in range(1, len(r) + 1):
            for j in range(1, len(h) + 1):
                d[i][j] = min(d[i - 1][j - 1] + (0 if r[i - 1] == h[j - 1] else sub), d[i - 1][j] + 1, d[i][j - 1] + 1)
        return d[-1][-1] / denominator(r, h)
    return word_error_rate


def test_wer_reference_passes_and_todo_is_not_done():
    assert check_wer(wer_with()).passed
    assert check_wer(wer).passed
    assert check_wer(todo).status == "not done"


def test_wer_unusual_but_correct_passes():
    """Recursion with a cache instead of a table, NumPy float returned."""
    from functools import cache

    def word_error_rate(reference, hypothesis):
        r, h = tuple(words(reference)), tuple(words(hypothesis))
        if not r:
            raise ValueError("empty reference")

        @cache
        def dist(i, j):
            if i == 0 or j == 0:
                return i + j
            return min(dist(i - 1, j - 1) + (r[i - 1] != h[j - 1]), dist(i - 1, j) + 1, dist(i, j - 1) + 1)
        return np.float64(dist(len(r), len(h)) / len(r))
    assert check_wer(word_error_rate).passed, check_wer(word_error_rate)


@pytest.mark.parametrize("wrong, words_", [
    (wer_with(denominator=lambda r, h: len(h) or 1), ["hypothesis"]),
    (wer_with(denominator=lambda r, h: max(len(r), len(h))), ["longer"]),
    (wer_with(sub=2), ["substitution counts as one"]),
    (wer_with(norm=str.split), ["normalise"]),
    (lambda ref, hyp: (sum(a != b for a, b in zip(words(ref), words(hyp))) + abs(len(words(ref)) - len(words(hyp)))) / len(words(ref)),
     ["position by position"]),
    (wer_with(denominator=lambda r, h: 1), ["number of edits"]),
    (wer_with(empty_raises=False), ["divide by zero"]),
])
def test_wer_mistakes_are_named(wrong, words_):
    failed_with(check_wer(wrong), *words_)


def test_wer_that_returns_zero_for_an_empty_reference_fails():
    def word_error_rate(reference, hypothesis):
        return wer(reference, hypothesis) if words(reference) else 0.0
    failed_with(check_wer(word_error_rate), "no word error rate", "valueerror")


# ----------------------------------------------------------------------------- 2. validator (build and measure)
def valid_with(*, schema=True, whole_words=True, normalise=True, question_mark=True, gives_away=True):
    def is_valid(record, passage):
        if schema:
            try:
                jsonschema.validate(record, QA_SCHEMA)
            except jsonschema.ValidationError:
                return False
        norm = normalize_text if normalise else (lambda t: t)
        pad = (lambda t: f" {t} ") if whole_words else (lambda t: t)
        q, a, p = (pad(norm(t)) for t in (record["question"], record["answer"], passage))
        ok = a.strip() != "" and a in p
        if question_mark:
            ok = ok and record["question"].strip().endswith("?")
        if gives_away:
            ok = ok and a not in q
        return ok
    return is_valid


def test_held_out_records_are_labelled_like_the_course_validator_and_unseen():
    shown = {repr(r) for r, _, _ in qa_records(60, seed=0)}
    held = qa_records(200, seed=HELD_OUT_SEED)
    assert all((label == "ok") == (not validate_record(r, p)) for r, p, label in held)
    assert len({label for _, _, label in held}) >= 8 and sum(label == "ok" for _, _, label in held) > 60
    assert len(shown & {repr(r) for r, _, _ in held}) < 10  # a few short records may repeat; the passages differ


def test_validator_reference_passes_and_todo_is_not_done(capsys):
    assert check_validator(valid_with()).passed
    printed = capsys.readouterr().out
    assert "held-out records" in printed and f"target {RECALL_TARGET:.0%}" in printed and f"target {KEEP_TARGET:.0%}" in printed
    assert check_validator(todo).status == "not done"


def test_validator_unusual_but_correct_passes():
    """No jsonschema: the schema's rules by hand, and the course's own validator for the content."""
    def is_valid(record, passage):
        if set(record) != {"question", "answer"} or not all(isinstance(record[k], str) for k in record):
            return False
        if not 10 <= len(record["question"]) <= 160 or not 1 <= len(record["answer"]) <= 60:
            return False
        a = normalize_text(record["answer"])
        return bool(a) and re.search(rf"\b{re.escape(a)}\b", normalize_text(passage)) is not None \
            and record["question"].strip().endswith("?") and not re.search(rf"\b{re.escape(a)}\b", normalize_text(record["question"]))
    assert check_validator(is_valid).passed, check_validator(is_valid)


def test_validator_that_only_checks_the_schema_misses_the_recall_target():
    def is_valid(record, passage):
        try:
            jsonschema.validate(record, QA_SCHEMA)
            return True
        except jsonschema.ValidationError:
            return False
    failed_with(check_validator(is_valid), "should be rejected")


@pytest.mark.parametrize("wrong, words_", [
    (valid_with(whole_words=False), ["whole words"]),
    (valid_with(normalise=False), ["case does not matter"]),
    (valid_with(question_mark=False), ["no question mark"]),
    (valid_with(gives_away=False), ["gives the answer away"]),
    (valid_with(schema=False), ["raise keyerror", "schema first"]),
])
def test_validator_mistakes_are_named(wrong, words_):
    failed_with(check_validator(wrong), *words_)


def test_validator_that_passes_the_edge_cases_but_not_the_held_out_records_fails(capsys):
    """Handles the lab's own records, but takes "not a string" only for ints: a list or None slips through."""
    good = valid_with()

    def is_valid(record, passage):
        answer = record.get("answer")
        if isinstance(answer, list | type(None)) and "question" in record and "answer" in record:
            return True
        return good(record, passage)
    message = failed_with(check_validator(is_valid), "held-out records", "rejects", "target")
    assert "the reference: 100% and 100%" in message


def test_validator_that_changes_the_record_fails():
    def is_valid(record, passage):
        record["answer"] = str(record.get("answer", "")).strip(" .")
        return valid_with()(record, passage)
    failed_with(check_validator(is_valid), "in place")


# ----------------------------------------------------------------------------- 3. streaming handler
def stream_with(accumulate=True, skip_empty=True, blank=lambda m: not m.strip(), order="history first", final_only=False):
    def stream_reply(backend, message, history):
        if blank(message):
            yield "⚠️ Type a message first."
            return
        user = {"role": "user", "content": message}
        messages = [*history, user] if order == "history first" else [user, *history]
        reply = ""
        for chunk in backend.chat_stream(messages, max_tokens=64, temperature=0.0):
            if skip_empty and not chunk.text:
                continue
            reply = reply + chunk.text if accumulate else chunk.text
            if not final_only:
                yield reply
        if final_only:
            yield reply
    return stream_reply


def test_stream_reference_passes_and_todo_is_not_done():
    assert check_stream_handler(stream_with()).passed
    assert check_stream_handler(todo).status == "not done"


def test_stream_unusual_but_correct_passes():
    """itertools.accumulate over the pieces, an extra argument with a default."""
    from itertools import accumulate

    def stream_reply(backend, message, history, max_tokens=64):
        if not message or message.isspace():
            yield "⚠️ empty message"
            return
        pieces = (c.text for c in backend.chat_stream(history + [{"role": "user", "content": message}], max_tokens=max_tokens, temperature=0.0))
        yield from accumulate(p for p in pieces if p)
    assert check_stream_handler(stream_reply).passed, check_stream_handler(stream_reply)


@pytest.mark.parametrize("wrong, words_", [
    (stream_with(accumulate=False), ["yielded each piece", "so far"]),
    (stream_with(final_only=True), ["only the finished reply"]),
    (stream_with(skip_empty=False), ["repeated update"]),
    (stream_with(order="message first"), ["history, then the new message"]),
    (stream_with(blank=lambda m: m == ""), ["'   '", "warning"]),
])
def test_stream_mistakes_are_named(wrong, words_):
    failed_with(check_stream_handler(wrong), *words_)


def test_stream_that_appends_to_the_history_fails():
    def stream_reply(backend, message, history):
        if not message.strip():
            yield "⚠️ empty"
            return
        history.append({"role": "user", "content": message})
        reply = ""
        for chunk in backend.chat_stream(history, max_tokens=64, temperature=0.0):
            if chunk.text:
                reply += chunk.text
                yield reply
    failed_with(check_stream_handler(stream_reply), "changed the history")


def test_stream_that_returns_a_string_fails():
    def stream_reply(backend, message, history):
        return "".join(c.text for c in backend.chat_stream([*history, {"role": "user", "content": message}]))
    failed_with(check_stream_handler(stream_reply), "generator")


def test_stream_that_calls_the_model_for_a_blank_message_fails():
    def stream_reply(backend, message, history):
        chunks = list(backend.chat_stream([*history, {"role": "user", "content": message}], max_tokens=64, temperature=0.0))
        if not message.strip():
            yield "⚠️ empty"
            return
        reply = ""
        for chunk in chunks:
            if chunk.text:
                reply += chunk.text
                yield reply
    failed_with(check_stream_handler(stream_reply), "must not reach the model")
