"""Lab 10's checks catch real mistakes: each is fed the wrong implementations a learner writes (each must fail
with a message naming the mistake), an unusual but correct implementation (must pass), a function that changes
its input, and a TODO stub (not done). The first failure never shows the next hint step."""

from __future__ import annotations

import inspect
import json
import re
import typing

import pytest
from verdicts import failed_with, todo

from course_utils.agents import parse_step, tool_schema
from course_utils.checks.agents import (
    HELD_OUT_SEED,
    check_dispatch,
    check_injection_detector,
    check_output_guard,
    check_schema,
    injection_messages,
)
from course_utils.guard import load_guard_examples, rates, split_sentences
from course_utils.text_safety import find_injection


@pytest.fixture(scope="module")
def examples():
    return load_guard_examples()


# ----------------------------------------------------------------------------- 1. schema
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def schema_with(types=JSON_TYPES, required=lambda p: p.default is inspect.Parameter.empty, description=lambda d: d.splitlines()[0],
                order=lambda names: names):
    def my_schema(fn):
        hints = typing.get_type_hints(fn)
        params = inspect.signature(fn).parameters
        names = order(list(params))
        return {"name": fn.__name__, "description": description(inspect.getdoc(fn) or ""),
                "parameters": {"type": "object", "properties": {n: {"type": types(hints[n]) if callable(types) else types[hints[n]]} for n in names},
                               "required": [n for n in names if required(params[n])]}}
    return my_schema


def test_schema_reference_passes_and_todo_is_not_done():
    assert check_schema(schema_with()).passed
    assert check_schema(tool_schema).passed
    assert check_schema(todo).status == "not done"


def test_schema_unusual_but_correct_passes():
    """fn.__annotations__ and fn.__defaults__ / __kwdefaults__ instead of inspect.signature, types by isinstance order."""
    def my_schema(fn):
        code = fn.__code__
        names = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
        defaults = set(names[code.co_argcount - len(fn.__defaults__ or ()): code.co_argcount]) | set(fn.__kwdefaults__ or {})
        kind = lambda t: next(v for k, v in [(bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")] if issubclass(t, k))  # noqa: E731
        hints = typing.get_type_hints(fn)
        return {"name": fn.__name__, "description": fn.__doc__.strip().split("\n")[0].strip(),
                "parameters": {"type": "object", "properties": {n: {"type": kind(hints[n])} for n in names},
                               "required": [n for n in names if n not in defaults]}}
    assert check_schema(my_schema).passed, check_schema(my_schema)


def int_first(t):
    return "integer" if issubclass(t, int) else {str: "string", float: "number"}[t]


@pytest.mark.parametrize("wrong, words", [
    (schema_with(types=int_first), ["bool came out as an integer"]),
    (schema_with(types=lambda t: t.__name__), ["json schema's type names"]),
    (schema_with(required=lambda p: True), ["default is optional"]),
    (schema_with(description=lambda d: d), ["only the first line"]),
    (schema_with(order=sorted), ["signature's order"]),
    (lambda fn: {"name": fn.__name__, "description": "", "parameters": {}}, ["description"]),
])
def test_schema_mistakes_are_named(wrong, words):
    failed_with(check_schema(wrong), *words)


# ----------------------------------------------------------------------------- 2. dispatch
def dispatch_reference(tools, reply):
    try:
        call = parse_step(reply)
        if call.tool not in tools:
            return f"Error: no tool {call.tool!r}"
        return str(tools[call.tool](**call.arguments))
    except Exception as err:  # noqa: BLE001
        return f"Error: {err}"


def test_dispatch_reference_passes_and_todo_is_not_done():
    assert check_dispatch(dispatch_reference).passed
    assert check_dispatch(todo).status == "not done"


def test_dispatch_unusual_but_correct_passes():
    """Its own JSON scan (json.JSONDecoder.raw_decode at each "{") instead of parse_step, and an extra argument with a default."""
    def dispatch(tools, reply, prefix="Error"):
        decoder = json.JSONDecoder()
        for start in (i for i, ch in enumerate(reply) if ch == "{"):
            try:
                call, _ = decoder.raw_decode(reply[start:])
            except json.JSONDecodeError:
                continue
            if isinstance(call, dict) and "tool" in call:
                tool = tools.get(call["tool"])
                if tool is None:
                    return f"{prefix}: unknown tool {call['tool']}"
                try:
                    return str(tool(**call.get("arguments", {})))
                except Exception as err:  # noqa: BLE001
                    return f"{prefix}: {err}"
        return f"{prefix}: no tool call found"
    assert check_dispatch(dispatch).passed, check_dispatch(dispatch)


def raising(tools, reply):
    call = parse_step(reply)
    return str(tools[call.tool](**call.arguments))


def strict_json(tools, reply):
    try:
        call = json.loads(reply)
        return str(tools[call["tool"]](**call["arguments"]))
    except Exception as err:  # noqa: BLE001
        return f"Error: {err}"


def lower_case_error(tools, reply):
    out = dispatch_reference(tools, reply)
    return "error" + out[5:] if out.startswith("Error") else out


def returns_the_value(tools, reply):
    try:
        call = parse_step(reply)
        return tools[call.tool](**call.arguments)
    except Exception as err:  # noqa: BLE001
        return f"Error: {err}"


def pops_the_tool(tools, reply):
    try:
        call = parse_step(reply)
        return str(tools.pop(call.tool)(**call.arguments))
    except Exception as err:  # noqa: BLE001
        return f"Error: {err}"


@pytest.mark.parametrize("wrong, words", [
    (raising, ["raised", "return 'error: ...'"]),
    (strict_json, ["a good call", "find the json call"]),
    (lower_case_error, ["capital e"]),
    (returns_the_value, ["return text"]),
    (pops_the_tool, ["in place"]),
])
def test_dispatch_mistakes_are_named(wrong, words):
    failed_with(check_dispatch(wrong), *words)


# ----------------------------------------------------------------------------- 3. injection detector (build and measure)
def detector(patterns, strip_invisible=True):
    def looks_like_injection(text):
        if strip_invisible:
            text = re.sub("[\u200b-\u200f\u2060\ufeff]", "", text)
        return any(re.search(p, text, re.IGNORECASE | re.MULTILINE) for p in patterns)
    return looks_like_injection


NARROW = [r"\b(?:ignore|forget|disregard)\b.{0,30}\b(?:previous|prior|all|your)\b.{0,20}\b(?:instructions|rules)",
          r"\byou are now\b|\bfrom now on\b", r"\b(?:DAN|developer mode|jailbreak|no rules)\b",
          r"^\s*system\s*:", r"<!--", r"\b(?:new|updated) instructions\s*:", r"\brole-?play\b.{0,40}\bpassword"]  # the lab's old solution
BROAD = [r"\b(?:ignore|forget|disregard|skip)\b.{0,30}\b(?:previous|prior|earlier|above|all|your)\b.{0,20}\b(?:instructions|rules|guidelines|directions)",
         r"\byou are now\b|\bfrom now on,? you\b", r"\b(?:DAN|developer mode|god mode|jailbreak|no rules|unfiltered)\b",
         r"\b(?:reveal|print|show|repeat|leak)\b.{0,20}\b(?:system prompt|hidden instructions|password|prompt)\b",
         r"^\s*(?:#+\s*)?system\s*:", r"<!--", r"\b(?:new|updated|real|admin) (?:instructions|task|note)\s*:", r"\brole-?play\b.{0,40}\bpassword"]


def test_held_out_messages_are_new_and_the_course_detector_meets_the_bounds(examples):
    held = injection_messages(200, seed=HELD_OUT_SEED)
    assert not {m["text"] for m in held} & {e.get("text") for e in examples}
    r = rates(held, lambda e: bool(find_injection(e["text"])), lambda e: e["label"] == "injection")
    assert r.fn_rate <= 0.3 and r.fp_rate <= 0.1, r


def test_injection_solution_passes_and_todo_is_not_done(examples, capsys):
    assert check_injection_detector(detector(BROAD), examples).passed
    printed = capsys.readouterr().out
    assert "held-out messages" in printed and "at most 30%" in printed and "find_injection" in printed
    assert check_injection_detector(todo, examples).status == "not done"


def test_injection_unusual_but_correct_passes(examples):
    """The course's detector behind a keyword pre-filter, returning NumPy booleans."""
    import numpy as np

    def looks_like_injection(text, extra=("pwned",)):
        return np.bool_(bool(find_injection(text)) or any(w in text.lower() for w in extra))
    assert check_injection_detector(looks_like_injection, examples).passed


def test_a_detector_tuned_to_the_shown_examples_misses_the_held_out_target(examples):
    message = failed_with(check_injection_detector(detector(NARROW), examples), "held-out", "misses rephrased attacks")
    assert "find_injection" in message


@pytest.mark.parametrize("wrong, words", [
    (lambda text: "ignore" in text.lower(), ["missed", "injections"]),
    (lambda text: any(w in text.lower() for w in ("ignore", "system", "kill", "act as", "imagine", "you are", "password", "rules", "mode")),
     ["flagged", "harmless"]),
    (detector(BROAD[:1]), ["missed", "injections"]),
    (lambda text: find_injection(text), ["true or false"]),
])
def test_injection_mistakes_are_named(examples, wrong, words):
    failed_with(check_injection_detector(wrong, examples), *words)


# ----------------------------------------------------------------------------- 4. output guard (MiniLM embeddings)
@pytest.fixture(scope="module")
def embedder():
    from course_utils.embeddings import Embedder

    return Embedder()


def guard_with(embedder, threshold=0.6, strip=True, own_citations=True):
    def unsupported(answer, sources):
        flagged = []
        for sentence in split_sentences(answer):
            cited = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
            if own_citations and (not cited or any(not 1 <= n <= len(sources) for n in cited)):
                flagged.append(sentence)
                continue
            pieces = [s for n in (cited or range(1, len(sources) + 1)) if 1 <= n <= len(sources) for s in split_sentences(sources[n - 1])]
            if not pieces:
                continue
            vectors = embedder.embed([re.sub(r"\[\d+\]", "", sentence) if strip else sentence] + pieces)
            if float((vectors[1:] @ vectors[0]).max()) < threshold:
                flagged.append(sentence)
        return flagged
    return unsupported


def test_output_guard_reference_passes_and_todo_is_not_done(examples, embedder):
    assert check_output_guard(guard_with(embedder), examples).passed
    assert check_output_guard(todo, examples).status == "not done"


def test_output_guard_unusual_but_correct_passes(examples):
    """The course's own check_grounding, with the threshold as an extra argument."""
    from course_utils.guard import check_grounding

    def unsupported(answer, sources, threshold=0.6):
        return [s.sentence for s in check_grounding(answer, sources, threshold=threshold).flagged]
    verdict = check_output_guard(unsupported, examples)
    assert verdict.passed, verdict


@pytest.mark.parametrize("make, words", [
    (lambda e: guard_with(e, threshold=0.95), ["grounded answers had sentences flagged", "too strict"]),
    (lambda e: guard_with(e, threshold=-1.0, own_citations=False), ["ungrounded answers were caught", "too lenient"]),
    (lambda e: (lambda answer, sources: split_sentences(answer)), ["grounded answers had sentences flagged"]),
])
def test_output_guard_mistakes_are_named(examples, embedder, make, words):
    failed_with(check_output_guard(make(embedder), examples), *words)


def test_output_guard_that_changes_the_sources_fails(examples, embedder):
    good = guard_with(embedder)

    def unsupported(answer, sources):
        out = good(answer, sources)
        sources.append("scratch")
        return out
    failed_with(check_output_guard(unsupported, examples), "in place")
