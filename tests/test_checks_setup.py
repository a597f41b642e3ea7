"""Lab 00's checks catch real mistakes: each exercise's check is fed the wrong implementations a learner
writes (each must fail with a message naming the mistake), an unusual but correct one (must pass), and the
TODO stub (not done); the first failure never shows the ``more=`` hint. The checks that talk to a model use
the real SmolLM2 through llama.cpp."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from verdicts import failed_with, todo

from course_utils.checks import setup as checks


def test_every_todo_is_not_done(llamacpp):
    assert checks.check_ask(todo, llamacpp).status == "not done"
    assert checks.check_join_stream(todo, llamacpp).status == "not done"
    assert checks.check_tpot(todo).status == "not done"
    assert checks.check_reproducible(todo, llamacpp).status == "not done"
    assert checks.check_short_answers(todo, llamacpp).status == "not done"


# ----------------------------------------------------------------------------- 1. ask
def ask(backend, question, max_tokens=48):
    return backend.chat([{"role": "user", "content": question}], temperature=0.0, max_tokens=max_tokens).text


def test_ask_reference_and_an_unusual_one_pass(llamacpp):
    assert checks.check_ask(ask, llamacpp).passed
    streamed = lambda b, q: "".join(c.text for c in b.chat_stream([{"role": "user", "content": q}], temperature=0.0, max_tokens=48))  # noqa: E731
    assert checks.check_ask(streamed, llamacpp).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda b, q: b.chat([{"role": "user", "content": q}], temperature=0.0, max_tokens=48), ["str", ".text"]),
    (lambda b, q: b.complete(q, temperature=0.0, max_tokens=48).text, ["chat template"]),
    (lambda b, q: ask(b, q, max_tokens=8), ["48"]),
    (lambda b, q: "Berlin", ["greedy answer"]),  # typed in for the lab's example
])
def test_ask_mistakes_are_named(llamacpp, wrong, words):
    failed_with(checks.check_ask(wrong, llamacpp), *words)


# ----------------------------------------------------------------------------- 2. join a stream
def test_join_stream_reference_and_an_unusual_one_pass(llamacpp):
    def join(backend, prompt):
        pieces = [c.text for c in backend.complete_stream(prompt, max_tokens=20) if c.text]
        return "".join(pieces), len(pieces)

    def with_a_counter(backend, prompt, joiner=""):
        text, n = "", 0
        for chunk in backend.complete_stream(prompt, max_tokens=20):
            if chunk.done:
                break
            text, n = text + chunk.text, n + bool(chunk.text)
        return text, n
    assert checks.check_join_stream(join, llamacpp).passed
    assert checks.check_join_stream(with_a_counter, llamacpp).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda b, p: ("".join(c.text for c in b.complete_stream(p, max_tokens=20)), len(list(b.complete_stream(p, max_tokens=20)))), ["final one", "done=true"]),
    (lambda b, p: (" ".join(c.text for c in b.complete_stream(p, max_tokens=20) if c.text), 20), ["spaces"]),
    (lambda b, p: ("".join(c.text for c in b.complete_stream(p, max_tokens=10) if c.text), 10), ["max_tokens=20"]),
    (lambda b, p: "".join(c.text for c in b.complete_stream(p, max_tokens=20)), ["pair"]),
])
def test_join_stream_mistakes_are_named(llamacpp, wrong, words):
    failed_with(checks.check_join_stream(wrong, llamacpp), *words)


# ----------------------------------------------------------------------------- 3. tpot
def tpot(start, stamps):
    return 0.0 if len(stamps) < 2 else (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def test_tpot_reference_and_an_unusual_one_pass():
    assert checks.check_tpot(tpot).passed
    assert checks.check_tpot(lambda start, stamps, unit=1.0: float(np.mean(np.diff(stamps))) * unit if len(stamps) > 1 else 0.0).passed


def tpot_popping(start, stamps):
    if len(stamps) < 2:
        return 0.0
    first = stamps.pop(0)  # right number, but the caller's list lost its first stamp
    return (stamps[-1] - first) / len(stamps)


@pytest.mark.parametrize("wrong, words", [
    (lambda start, stamps: (stamps[-1] - start) / len(stamps) if stamps else 0.0, ["first token is part"]),
    (lambda start, stamps: (stamps[-1] - stamps[0]) / len(stamps) if stamps else 0.0, ["gaps", "divided by"]),
    (lambda start, stamps: stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0, ["whole decoding time"]),
    (lambda start, stamps: (stamps[-1] - stamps[0]) / (len(stamps) - 1) if stamps else 0.0, ["divided by zero"]),
    (lambda start, stamps: 0.0 if len(stamps) == 1 else (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1), ["indexerror"]),
    (tpot_popping, ["in place"]),
])
def test_tpot_mistakes_are_named(wrong, words):
    failed_with(checks.check_tpot(wrong), *words)


def test_tpot_with_integer_division_fails():
    failed_with(checks.check_tpot(lambda start, stamps: (stamps[-1] - stamps[0]) // (len(stamps) - 1) if len(stamps) > 1 else 0.0), "expected")


# ----------------------------------------------------------------------------- 4. reproducible sampling
def twice(backend, seed=42):
    return tuple(backend.complete("Once upon a time", max_tokens=20, temperature=0.9, seed=seed).text for _ in range(2))


def test_reproducible_reference_and_an_unusual_one_pass(llamacpp):
    assert checks.check_reproducible(twice, llamacpp).passed
    # another temperature and seed, nucleus sampling, returned as a list
    other = lambda b: [b.complete("Once upon a time", max_tokens=20, temperature=1.3, top_p=0.9, seed=7).text for _ in "ab"]  # noqa: E731
    assert checks.check_reproducible(other, llamacpp).passed


def sample_once(backend):
    text = backend.complete("Once upon a time", max_tokens=20, temperature=0.9, seed=1).text
    return text, text


@pytest.mark.parametrize("wrong, words", [
    (lambda b: tuple(b.complete("Once upon a time", max_tokens=20, temperature=0.9).text for _ in range(2)), ["differ"]),
    (lambda b: tuple(b.complete("Once upon a time", max_tokens=20, temperature=0.9, seed=s).text for s in (1, 2)), ["differ"]),
    (lambda b: tuple(b.complete("Once upon a time", max_tokens=20, temperature=0.0, seed=3).text for _ in range(2)), ["greedy"]),
    (sample_once, ["time(s)", "two calls"]),
])
def test_reproducible_mistakes_are_named(llamacpp, wrong, words):
    failed_with(checks.check_reproducible(wrong, llamacpp), *words)


# ----------------------------------------------------------------------------- 5. short exact answers (build and measure)
def test_the_reference_prompt_reaches_the_target_and_reports_it(llamacpp, capsys):
    verdict = checks.check_short_answers(checks.reference_capital, llamacpp)
    assert verdict.passed, verdict
    printed = capsys.readouterr().out
    assert re.search(r"\d+ of 10 answers .* target 70%.* reference few-shot prompt: \d+%", printed), printed
    lab = (Path(__file__).resolve().parents[1] / "labs" / "src" / "00_setup_lab.py").read_text(encoding="utf-8")
    assert not any(country in lab for country, _ in checks.CAPITALS)  # the lab shows other countries only


def test_an_unusual_prompt_that_parses_the_chat_answer_passes(llamacpp):
    """The chat answer, cut down to the name: 'The capital of X is Y.' -> 'Y', with the few-shot prompt as a fallback."""
    def parse(backend, country):
        text = backend.chat([{"role": "user", "content": f"What is the capital of {country}?"}], temperature=0.0, max_tokens=24).text
        found = re.search(r"capital of .+? is ([A-Z][\w ]+?)\.", text)
        return found.group(1) if found else checks.reference_capital(backend, country)
    assert checks.check_short_answers(parse, llamacpp).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda b, c: b.chat([{"role": "user", "content": f"What is the capital of {c}?"}], temperature=0.0, max_tokens=24).text,
     ["target", "say more"]),  # the lazy way: the model's sentence as it is
    (lambda b, c: b.complete(f"The capital of {c} is", temperature=0.0, max_tokens=12).text, ["target"]),  # no stop: runs on
    (lambda b, c: b.chat([{"role": "system", "content": "Answer with the city name only."}, {"role": "user", "content": f"Capital of {c}?"}],
                         temperature=0.0, max_tokens=12).text, ["target"]),  # an instruction the small model does not follow
    (lambda b, c: "Paris", ["target"]),
])
def test_lazy_answers_miss_the_target(llamacpp, wrong, words):
    failed_with(checks.check_short_answers(wrong, llamacpp), *words)
