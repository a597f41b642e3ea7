"""Checks for lab 00 (setup): asking, streaming, timing, reproducible sampling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..metrics import StreamTimer
from . import Verdict, run_check


def check_ask(ask: Callable[[Any, str], str], backend: Any) -> Verdict:
    """``ask(backend, question)`` must return the greedy answer text of a one-message chat."""

    def test(fn: Callable[[Any, str], str]) -> bool | str:
        answer = fn(backend, "What is the capital of Germany?")
        if not isinstance(answer, str):
            return f"ask() should return the answer as a str, got {type(answer).__name__} (use result.text)"
        expected = backend.chat([{"role": "user", "content": "What is the capital of Germany?"}], temperature=0.0, max_tokens=48).text
        if answer.strip() != expected.strip():
            return f"got {answer[:60]!r}, the greedy answer is {expected[:60]!r}"
        return True

    return run_check("ask", test, ask, hint="a chat is a list of {'role', 'content'} dicts; the result's .text is the answer")


def check_join_stream(join_stream: Callable[[Any, str], tuple[str, int]], backend: Any) -> Verdict:
    """``join_stream(backend, prompt)`` -> (full text, number of chunks that carried text)."""

    def test(fn: Callable[[Any, str], tuple[str, int]]) -> bool | str:
        prompt = "The three primary colours are"
        out = fn(backend, prompt)
        if not (isinstance(out, tuple) and len(out) == 2):
            return "return a pair: (text, number_of_text_chunks)"
        text, n = out
        chunks = [c for c in backend.complete_stream(prompt, max_tokens=20) if c.text]
        expected = "".join(c.text for c in chunks)
        if text != expected:
            return f"the joined text {text[:50]!r} differs from {expected[:50]!r}"
        if n != len(chunks):
            return f"counted {n} chunks with text, expected {len(chunks)} (skip the final empty chunk)"
        return True

    return run_check("join_stream", test, join_stream, hint="count only chunks whose .text is not empty")


def check_tpot(tpot: Callable[[float, list[float]], float]) -> Verdict:
    """``tpot(start, stamps)``: mean gap between token stamps after the first (0.0 for < 2 tokens)."""

    def test(fn: Callable[[float, list[float]], float]) -> bool | str:
        for start, stamps in ((0.0, [0.5, 0.6, 0.8]), (1.0, [1.2, 1.25, 1.3, 1.35, 1.6]), (0.0, [0.3])):
            timer = StreamTimer(start=start)
            for s in stamps:
                timer.token(now=s)
            expected = timer.finish(prompt_tokens=1, now=stamps[-1]).tpot_s
            got = fn(start, stamps)
            if got is None:
                raise NotImplementedError
            if abs(got - expected) > 1e-9:
                return f"for stamps {stamps} expected {expected:.4f} s, got {got}"
        return True

    return run_check("tpot", test, tpot, hint="(last stamp - first stamp) / (number of tokens - 1); TTFT is not part of it")


def check_reproducible(sample_twice: Callable[[Any], tuple[str, str]], backend: Any) -> Verdict:
    """``sample_twice(backend)`` must sample (temperature > 0) twice and get the same text."""

    def test(fn: Callable[[Any], tuple[str, str]]) -> bool | str:
        a, b = fn(backend)
        greedy = backend.complete("Once upon a time", max_tokens=20).text
        if a != b:
            return "the two samples differ: pass the same seed= to both calls"
        if a == greedy:
            return "that looks like greedy output: use a temperature above 0 so the model samples"
        return True

    return run_check("reproducible sampling", test, sample_twice, hint="both calls need the same seed= and a temperature above 0")
