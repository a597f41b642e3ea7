"""Checks for lab 10 (agents and guardrails): a tool schema, a safe tool dispatcher, an injection
detector and an output (grounding) guard."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Sequence
from typing import Any

from ..agents import make_tool, tool_schema
from . import NotDone, Verdict, run_check


# ----------------------------------------------------------------------------- functions to describe
def _add(a: int, b: int = 0) -> int:
    """Add two whole numbers."""
    return a + b


def _greet(name: str, shout: bool, times: float = 1.0) -> str:
    """Greet someone by name.

    Longer explanation that is not part of the description.
    """
    return name


def _nothing() -> str:
    """Return a fixed word."""
    return "ok"


SCHEMA_CASES = (_add, _greet, _nothing)


def _core(schema: dict[str, Any]) -> dict[str, Any]:
    """The parts the exercise asks for: name, description, property types, required."""
    params = schema.get("parameters", {})
    return {"name": schema.get("name"), "description": schema.get("description"),
            "types": {k: v.get("type") for k, v in params.get("properties", {}).items()},
            "required": list(params.get("required", [])), "type": params.get("type")}


def check_schema(my_schema: Callable[[Callable[..., Any]], dict[str, Any]]) -> Verdict:
    """``my_schema(fn)`` -> {"name", "description", "parameters": {"type": "object", "properties", "required"}}."""

    def test(fn: Callable[..., Any]) -> bool | str:
        for case in SCHEMA_CASES:
            got = fn(case)
            if got is None:
                raise NotDone
            if not isinstance(got, dict):
                return f"return a dict, got {type(got).__name__}"
            mine, want = _core(got), _core(tool_schema(case))
            for key in ("name", "description", "type", "types", "required"):
                if mine[key] != want[key]:
                    where = {"types": "the property types", "required": "the required list", "type": 'parameters["type"]'}.get(key, key)
                    return f"for {case.__name__}{typing.get_type_hints(case)} {where} should be {want[key]!r}, got {mine[key]!r}"
        return True

    return run_check("tool schema from a signature", test, my_schema,
                     hint="inspect.signature(fn).parameters, typing.get_type_hints(fn); required = parameters whose default is inspect.Parameter.empty; description = first line of inspect.getdoc(fn)")


# ----------------------------------------------------------------------------- dispatching calls
def _multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


def _shout(text: str) -> str:
    """Upper-case a text."""
    if not text:
        raise ValueError("nothing to shout")
    return text.upper()


DISPATCH_CASES = (
    ('{"tool": "multiply", "arguments": {"a": 6, "b": 7}}', "42"),
    ('Sure! {"tool": "shout", "arguments": {"text": "hi"}}', "HI"),
    ('{"tool": "divide", "arguments": {"a": 1, "b": 2}}', None),  # unknown tool
    ('{"tool": "multiply", "arguments": {"a": 6}}', None),  # missing argument
    ('{"tool": "multiply", "arguments": {"a": 6, "b": 7, "c": 1}}', None),  # unknown argument
    ('{"tool": "multiply", "arguments": {"a": 6, "b": ', None),  # cut-off JSON
    ("The answer is 42.", None),  # no call at all
    ('{"tool": "shout", "arguments": {"text": ""}}', None),  # the tool raises
)


def check_dispatch(dispatch: Callable[[dict[str, Any], str], str]) -> Verdict:
    """``dispatch(tools, reply)`` -> the tool's result as text, or a text starting with "Error" (never raises)."""

    def test(fn: Callable[..., Any]) -> bool | str:
        tools = {t.name: t for t in (make_tool(_multiply, "multiply"), make_tool(_shout, "shout"))}
        for reply, want in DISPATCH_CASES:
            try:
                got = fn(dict(tools), reply)
            except NotImplementedError:
                raise
            except Exception as err:
                return f"dispatch raised {type(err).__name__} for the reply {reply!r}: catch it and return 'Error: ...' instead"
            if got is None:
                raise NotDone
            if not isinstance(got, str):
                return f"return text, got {type(got).__name__} for {reply!r}"
            if want is None and not got.startswith("Error"):
                return f"for the reply {reply!r} expected a text starting with 'Error', got {got!r:.60}"
            if want is not None:
                try:
                    ok = float(got) == float(want)
                except ValueError:
                    ok = got == want
                if not ok:
                    return f"for the reply {reply!r} expected {want!r}, got {got!r:.60}"
        return True

    return run_check("safe tool dispatch", test, dispatch,
                     hint="course_utils.agents.parse_step(reply) finds the call; tools[name](**arguments) validates and runs it; wrap both in try/except Exception")


# ----------------------------------------------------------------------------- injection detector
def check_injection_detector(looks_like_injection: Callable[[str], bool], examples: Sequence[dict[str, Any]],
                             max_fn_rate: float = 0.3, max_fp_rate: float = 0.1) -> Verdict:
    """``looks_like_injection(text)`` -> bool, measured on the labelled safe and injection inputs."""
    from ..guard import rates

    def test(fn: Callable[[str], bool]) -> bool | str:
        cases = [e for e in examples if e.get("kind") == "input" and e["label"] in ("safe", "injection")]
        if fn(cases[0]["text"]) is None:
            raise NotDone
        r = rates(cases, lambda e: bool(fn(e["text"])), lambda e: e["label"] == "injection")
        if r.fn_rate > max_fn_rate:
            return f"it missed {r.fn} of {r.fn + r.tp} injections (FN rate {r.fn_rate:.0%} > {max_fn_rate:.0%}), e.g. {r.missed[:3]}"
        if r.fp_rate > max_fp_rate:
            return f"it flagged {r.fp} of {r.fp + r.tn} harmless messages (FP rate {r.fp_rate:.0%} > {max_fp_rate:.0%}), e.g. {r.false_alarms[:3]}"
        return True

    return run_check("injection detector", test, looks_like_injection,
                     hint="a few case-insensitive regexes: 'ignore ... previous ... instructions', 'you are now', 'developer mode', 'reveal ... system prompt'")


# ----------------------------------------------------------------------------- output guard
def check_output_guard(unsupported: Callable[[str, list[str]], list[str]], examples: Sequence[dict[str, Any]]) -> Verdict:
    """``unsupported(answer, sources)`` -> the sentences of ``answer`` that no cited source supports.

    Passes when no grounded example gets a sentence flagged and at least 3 of the ungrounded ones do.
    """

    def test(fn: Callable[[str, list[str]], list[str]]) -> bool | str:
        cases = [e for e in examples if e.get("kind") == "grounding"]
        flagged_ok, caught = [], []
        for e in cases:
            got = fn(e["answer"], list(e["sources"]))
            if got is None:
                raise NotDone
            if not isinstance(got, list):
                return f"return a list of sentences, got {type(got).__name__}"
            if e["label"] == "grounded" and got:
                flagged_ok.append((e["id"], got))
            if e["label"] == "ungrounded" and got:
                caught.append(e["id"])
        if flagged_ok:
            ident, sentences = flagged_ok[0]
            return f"{len(flagged_ok)} grounded answers had sentences flagged, e.g. {ident}: {json.dumps(sentences)[:100]} (threshold too strict?)"
        bad = sum(e["label"] == "ungrounded" for e in cases)
        if len(caught) < 3:
            return f"only {len(caught)} of {bad} ungrounded answers were caught (threshold too lenient, or citations ignored?)"
        return True

    return run_check("output guard", test, unsupported,
                     hint="split into sentences, embed each (without its [n]) and the cited source's sentences, flag when the best cosine similarity is below ~0.6")
