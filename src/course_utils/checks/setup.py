"""Checks for lab 00 (setup): asking, streaming, timing, reproducible sampling, and short exact answers.

The checks talk to the real model through the backend the lab opened. They use more than one
question or prompt (an answer typed in for the lab's example fails), compare with the backend's own
greedy output, hand ``tpot`` stamps whose count does not divide evenly and lists of zero and one
stamps, and count the backend calls a sampler makes (one sample returned twice is not reproducible
sampling). The last exercise is measured: exact answers to questions the check picks, beside the
reference prompt's score.

>>> print(check_tpot(lambda start, stamps: (stamps[-1] - start) / len(stamps)))
❌ tpot: not right yet — for stamps [0.5, 0.6, 0.8] (start 0.0) expected 0.1500 s, got 0.26666666666666666: the time to the first token is part of your result; TPOT starts at the first token. Hint: TPOT is the mean gap between tokens: look at which stamps it uses and how many gaps there are. Still stuck? Run hint("tpot")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..metrics import StreamTimer
from . import Mistake, Verdict, call_unchanged, run_check

ASK_QUESTIONS = ("What is the capital of Germany?", "Name three colours of the rainbow.")
ASK_TOKENS = 48
STREAM_PROMPTS = ("The three primary colours are", "1, 2, 3, 4,")
STREAM_TOKENS = 20
TPOT_CASES = ((0.0, [0.5, 0.6, 0.8]), (1.0, [1.2, 1.25, 1.3, 1.35, 1.6]), (10.0, [10.5, 11.0, 11.2, 12.1, 12.4, 12.5, 13.0, 13.3, 13.6, 14.0, 14.6, 15.0]),
              (0.0, [0.3]), (2.0, []))
SAMPLE_PROMPT, SAMPLE_TOKENS = "Once upon a time", 20

# exercise 5: questions the check asks (the lab shows others); the answer is the city's name alone
CAPITALS = (("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"), ("the United Kingdom", "London"), ("Russia", "Moscow"),
            ("Egypt", "Cairo"), ("China", "Beijing"), ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Austria", "Vienna"))
TARGET_EXACT = 0.7  # share of exact answers needed
REFERENCE_PROMPT = "Country: France\nCapital: Paris\n\nCountry: Germany\nCapital: Berlin\n\nCountry: {country}\nCapital:"


def _text(value: Any, what: str) -> str:
    if value is None:
        raise NotImplementedError
    if not isinstance(value, str):
        hint = " (the result's .text)" if hasattr(value, "text") else ""
        raise Mistake(f"{what} should return the text as a str, got {type(value).__name__}{hint}")
    return value


# ----------------------------------------------------------------------------- 1. ask
def check_ask(ask: Callable[[Any, str], str], backend: Any) -> Verdict:
    """``ask(backend, question)`` must return the greedy answer text of a one-message chat (max_tokens=48)."""

    def test(fn: Callable[[Any, str], str]) -> bool | str:
        for question in ASK_QUESTIONS:
            answer = _text(fn(backend, question), "ask()")
            expected = backend.chat([{"role": "user", "content": question}], temperature=0.0, max_tokens=ASK_TOKENS).text
            if answer.strip() == expected.strip():
                continue
            where = f"for {question!r} you returned {answer[:50]!r}, the greedy answer is {expected[:50]!r}"
            plain = backend.complete(question, temperature=0.0, max_tokens=ASK_TOKENS).text
            if answer.strip() == plain.strip():
                return f"{where}: that is a plain completion of the text; a chat wraps the message in the model's chat template"
            if expected.startswith(answer.strip()) or answer.startswith(expected.strip()):
                return f"{where}: the length differs; the exercise asks for at most {ASK_TOKENS} new tokens"
            return f"{where}: is it one user message, greedy (temperature 0)?"
        return True

    return run_check("ask", test, ask, hint="a chat is a list of {'role', 'content'} dicts; greedy means the same answer every time (look at the temperature)",
                     more="backend.chat([{'role': 'user', 'content': question}], temperature=0.0, max_tokens=48).text")


# ----------------------------------------------------------------------------- 2. join a stream
def check_join_stream(join_stream: Callable[[Any, str], tuple[str, int]], backend: Any) -> Verdict:
    """``join_stream(backend, prompt)`` -> (full text, number of chunks that carried text)."""

    def test(fn: Callable[[Any, str], tuple[str, int]]) -> bool | str:
        for prompt in STREAM_PROMPTS:
            out = fn(backend, prompt)
            if out is None:
                raise NotImplementedError
            if not (isinstance(out, tuple) and len(out) == 2):
                return "return a pair: (text, number_of_text_chunks)"
            text, n = out
            chunks = list(backend.complete_stream(prompt, max_tokens=STREAM_TOKENS))
            with_text = [c for c in chunks if c.text]
            expected = "".join(c.text for c in with_text)
            if text != expected:
                if text.replace(" ", "") == expected.replace(" ", ""):
                    return f"for {prompt!r} the joined text differs in its spaces: join the chunks with '' exactly as they come"
                return f"for {prompt!r} the joined text {text[:50]!r} differs from {expected[:50]!r} (max_tokens={STREAM_TOKENS})"
            if n == len(chunks) and len(chunks) != len(with_text):
                return f"for {prompt!r} you counted {n} chunks, also the final one without text (done=True); count only chunks that carry text"
            if n != len(with_text):
                return f"for {prompt!r} you counted {n} chunks with text, the stream had {len(with_text)}"
        return True

    return run_check("join_stream", test, join_stream, hint="the stream's last chunk carries the result, not text",
                     more="pieces = [c.text for c in backend.complete_stream(prompt, max_tokens=20) if c.text]; return ''.join(pieces), len(pieces)")


# ----------------------------------------------------------------------------- 3. time per output token
def _expected_tpot(start: float, stamps: list[float]) -> float:
    if len(stamps) < 2:
        return 0.0
    timer = StreamTimer(start=start)
    for s in stamps:
        timer.token(now=s)
    return timer.finish(prompt_tokens=1, now=stamps[-1]).tpot_s


def check_tpot(tpot: Callable[[float, list[float]], float]) -> Verdict:
    """``tpot(start, stamps)``: mean gap between token stamps after the first (0.0 for < 2 tokens)."""

    def test(fn: Callable[[float, list[float]], float]) -> bool | str:
        for start, stamps in TPOT_CASES:
            try:
                got = call_unchanged(fn, start, list(stamps))
            except ZeroDivisionError:
                return f"for {len(stamps)} stamp(s) your function divided by zero: with fewer than two tokens there is no gap, return 0.0"
            except IndexError:
                return "for an empty list of stamps your function raised IndexError: with fewer than two tokens return 0.0"
            if got is None:
                raise NotImplementedError
            expected = _expected_tpot(start, stamps)
            if abs(float(got) - expected) <= 1e-9:
                continue
            where = f"for stamps {stamps if len(stamps) < 6 else str(stamps[:4])[:-1] + ', ...]'} (start {start}) expected {expected:.4f} s, got {got}"
            if len(stamps) >= 2:
                n = len(stamps)
                if abs(got - (stamps[-1] - start) / n) < 1e-9 or abs(got - (stamps[-1] - start) / (n - 1)) < 1e-9:
                    return f"{where}: the time to the first token is part of your result; TPOT starts at the first token"
                if abs(got - (stamps[-1] - stamps[0]) / n) < 1e-9:
                    return f"{where}: {n} tokens have {n - 1} gaps between them; you divided by {n}"
                if abs(got - (stamps[-1] - stamps[0])) < 1e-9:
                    return f"{where}: that is the whole decoding time; TPOT is per token (a mean over the gaps)"
            return where
        return True

    return run_check("tpot", test, tpot, hint="TPOT is the mean gap between tokens: look at which stamps it uses and how many gaps there are",
                     more="(last stamp - first stamp) / (number of tokens - 1), and 0.0 for fewer than two stamps")


# ----------------------------------------------------------------------------- 4. reproducible sampling
class _CountingBackend:
    """The lab's backend, counting ``complete`` and ``chat`` calls and the options they used."""

    def __init__(self, backend: Any) -> None:
        self._backend, self.calls = backend, []

    def complete(self, prompt: str, **options: Any) -> Any:
        self.calls.append(dict(options))
        return self._backend.complete(prompt, **options)

    def chat(self, messages: Any, **options: Any) -> Any:
        self.calls.append(dict(options))
        return self._backend.chat(messages, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def check_reproducible(sample_twice: Callable[[Any], tuple[str, str]], backend: Any) -> Verdict:
    """``sample_twice(backend)`` must sample (temperature > 0) twice and get the same text."""

    def test(fn: Callable[[Any], tuple[str, str]]) -> bool | str:
        counted = _CountingBackend(backend)
        out = fn(counted)
        if out is None:
            raise NotImplementedError
        if not (isinstance(out, tuple | list) and len(out) == 2):
            return "return the two texts as a pair (first, second)"
        a, b = (_text(x, "sample_twice()") for x in out)
        if len(counted.calls) < 2:
            return f"the backend was asked {len(counted.calls)} time(s): sample twice (two calls), then compare"
        greedy = backend.complete(SAMPLE_PROMPT, max_tokens=SAMPLE_TOKENS, temperature=0.0).text
        if a != b:
            return "the two samples differ: each call draws its own random numbers unless you fix where they start"
        if a == greedy or any(float(c.get("temperature", 1.0) or 0.0) <= 0 for c in counted.calls):
            return "that is greedy output (temperature 0): the exercise asks for sampling, with a temperature above 0"
        return True

    return run_check("reproducible sampling", test, sample_twice, hint="two sampling calls draw the same random numbers only when they start from the same place: look at the backend's options",
                     more="pass the same seed= (and temperature > 0) to both backend.complete calls")


# ----------------------------------------------------------------------------- 5. short exact answers (build and measure)
def _normalise(answer: str) -> str:
    return answer.strip().rstrip(".").strip()


def reference_capital(backend: Any, country: str) -> str:
    """The reference solution: a two-example completion prompt, greedy, cut at the end of the line."""
    return backend.complete(REFERENCE_PROMPT.format(country=country), temperature=0.0, max_tokens=6, stop=["\n"]).text.strip()


def check_short_answers(capital_of: Callable[[Any, str], str], backend: Any, target: float = TARGET_EXACT) -> Verdict:
    """``capital_of(backend, country)`` -> the capital's name alone; exact on at least ``target`` of the
    check's countries (none of them appears in the lab), measured beside :func:`reference_capital`."""

    def test(fn: Callable[[Any, str], str]) -> bool | str:
        answers = [_text(fn(backend, country), "capital_of()") for country, _ in CAPITALS]
        exact = [_normalise(a) == city for a, (_, city) in zip(answers, CAPITALS, strict=True)]
        inside = sum(city.lower() in a.lower() for a, (_, city) in zip(answers, CAPITALS, strict=True))
        reference = sum(_normalise(reference_capital(backend, c)) == city for c, city in CAPITALS) / len(CAPITALS)
        yours = sum(exact) / len(CAPITALS)
        wrong = [f"{c}: {a.strip()[:40]!r}" for a, ok, (c, _) in zip(answers, exact, CAPITALS, strict=True) if not ok][:3]
        report = (f"{sum(exact)} of {len(CAPITALS)} answers are exactly the capital's name ({yours:.0%}; target {target:.0%}); "
                  f"the reference few-shot prompt: {reference:.0%}")
        print(report)
        if yours >= target:
            return True
        if inside > sum(exact):
            return (f"{report}. {inside} answers contain the right city but say more ({'; '.join(wrong)}): make the model "
                    "answer with the name alone (a prompt whose pattern ends where the name starts, a stop string, few tokens)")
        return f"{report}. Wrong: {'; '.join(wrong)}; show the model the form of answer you want"

    return run_check("short exact answers", test, capital_of,
                     hint="a small model copies patterns better than it follows instructions: show it examples of the answer you want",
                     more='backend.complete("Country: France\\nCapital: Paris\\n\\nCountry: {country}\\nCapital:", temperature=0.0, '
                          'max_tokens=6, stop=["\\n"]).text.strip()')

