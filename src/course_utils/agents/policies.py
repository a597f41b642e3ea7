"""One agent step as JSON, and the policies that write it: a course backend, LangChain, a script.

Taught in lesson 10 (sections 3 and 6). A step is one JSON object,
``{"thought": ..., "tool": ..., "arguments": {...}}``. :func:`step_schema` writes its JSON schema:
one ``anyOf`` branch per tool, so a grammar built from it (llama.cpp masks every token that would
break the schema) admits only calls of a real tool with valid arguments for *that* tool. The
grammar constrains the *format*, not the *judgement*: the model can still pick the wrong tool.
:func:`parse_step` finds the call in whatever the model wrote.

A **policy** is anything that turns the conversation so far into the next step's text:

>>> policy = ScriptedPolicy(['{"tool": "final_answer", "arguments": {"answer": "4"}}'])
>>> parse_step(policy([{"role": "user", "content": "2 + 2?"}], None))
ToolCall(tool='final_answer', arguments={'answer': '4'}, thought='')
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidOption
from .tools import FINAL, Tool, ToolError

if TYPE_CHECKING:
    from ..backends.base import Backend

__all__ = ["STEP_MAX_TOKENS", "BackendPolicy", "LangChainPolicy", "Policy", "ScriptedPolicy", "ToolCall",
           "parse_step", "step_schema", "to_langchain"]

# Room for the longest step step_schema admits for lesson 10's tools: a final_answer with a 60-character
# thought and a 120-character answer is 202 SmolLM2 tokens when the strings are digits (each digit is
# its own token). 160, the old default, cut 2 of 38 grammar steps on lesson 10's 30 tasks, and a cut
# step is not JSON. With the grammar the reply ends when the JSON closes, so the extra room is free.
STEP_MAX_TOKENS = 256
MAX_THOUGHT, MAX_ANSWER, MAX_STRING = 60, 120, 100  # characters, so a grammar-forced step always ends


def step_schema(tools: Sequence[Tool], thought: bool = True, max_thought: int = MAX_THOUGHT) -> dict[str, Any]:
    """JSON schema of one agent step: a call of one of ``tools`` or the final answer.

    One ``anyOf`` branch per tool fixes the tool's name *and* its argument schema together, so a
    grammar built from it admits only calls with valid arguments for the named tool.

    >>> [b["properties"]["tool"]["const"] for b in step_schema([])["anyOf"]]
    ['final_answer']
    """
    def branch(name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        if thought:
            props["thought"] = {"type": "string", "maxLength": max_thought}
        props["tool"] = {"const": name}
        props["arguments"] = _strict(parameters)
        return {"type": "object", "properties": props, "required": list(props)}

    final = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": MAX_ANSWER}}, "required": ["answer"]}
    return {"anyOf": [branch(t.name, t.parameters) for t in tools] + [branch(FINAL, final)]}


def _strict(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The argument schema with every property required, no extras, bounded strings (for a grammar)."""
    props = {}
    for k, v in parameters.get("properties", {}).items():
        v = {kk: vv for kk, vv in v.items() if kk not in ("description", "default")}
        if v.get("type") == "string":
            v.setdefault("maxLength", MAX_STRING)
        props[k] = v
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


@dataclass(frozen=True)
class ToolCall:
    tool: str
    arguments: dict[str, Any]
    thought: str = ""


def parse_step(text: str) -> ToolCall:
    """The call in a model's reply: the first JSON object in ``text`` with a ``tool`` key.

    Raises :class:`ToolError` when there is none (the model wrote prose, or broken JSON).

    >>> parse_step('Sure! {"tool": "calculate", "arguments": {"expression": "2+2"}}')
    ToolCall(tool='calculate', arguments={'expression': '2+2'}, thought='')
    """
    if not isinstance(text, str):
        raise ToolError(f"the model's reply must be text, got {type(text).__name__}", fix="make the policy return the reply's text (a str)")
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "tool" in obj:
            args = obj.get("arguments", {})
            if not isinstance(obj["tool"], str):
                raise ToolError(f"'tool' must be a tool's name, got {json.dumps(obj['tool'])[:60]}", fix='send {"tool": "<a tool name>", ...}')
            if not isinstance(args, dict):
                raise ToolError(f"'arguments' must be a JSON object, got {json.dumps(args)[:60]}", fix='send {"tool": ..., "arguments": {"name": value}}')
            return ToolCall(obj["tool"], args, str(obj.get("thought", "")))
    raise ToolError(f"no tool call found in the reply {text.strip()[:80]!r}", fix='reply with one JSON object: {"thought": ..., "tool": ..., "arguments": {...}}')


# ============================================================================= who writes the steps
class Policy(typing.Protocol):
    """Anything that turns the conversation so far into the next step's text."""

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str: ...


class BackendPolicy:
    """Ask a course backend for each step; ``grammar=True`` constrains it to the step schema.

    ``max_tokens`` bounds each step (see :data:`STEP_MAX_TOKENS` for why 256).
    """

    def __init__(self, backend: Backend, grammar: bool = True, max_tokens: int = STEP_MAX_TOKENS, **options: Any) -> None:
        if not callable(getattr(backend, "chat", None)):
            raise InvalidOption(f"BackendPolicy needs a course backend, got {type(backend).__name__}", fix='pass get_backend("auto") (or any backend with .chat)')
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidOption(f"max_tokens must be a positive whole number, got {max_tokens!r}", fix=f"use e.g. max_tokens={STEP_MAX_TOKENS}")
        self.backend, self.grammar, self.max_tokens, self.options = backend, grammar, max_tokens, options

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        schema = schema if self.grammar else None
        return self.backend.chat(messages, max_tokens=self.max_tokens, temperature=0.0, json_schema=schema, **self.options).text


class LangChainPolicy:
    """Ask a LangChain chat model for each step, e.g. ``ChatOpenAI(base_url=<local server>)``.

    ``grammar=True`` sends the step schema as ``response_format={"type": "json_object", "schema": ...}``,
    which llama.cpp's server (llama-cpp-python and the C++ ``llama-server``) turns into a grammar.
    """

    def __init__(self, chat_model: Any, grammar: bool = True) -> None:
        if not callable(getattr(chat_model, "invoke", None)):
            raise InvalidOption(f"LangChainPolicy needs a LangChain chat model, got {type(chat_model).__name__}", fix="pass e.g. ChatOpenAI(base_url=server.base_url, api_key='sk-local')")
        self.chat_model, self.grammar = chat_model, grammar

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        extra = {"response_format": {"type": "json_object", "schema": schema}} if self.grammar and schema else {}
        reply = self.chat_model.invoke([(m["role"], m["content"]) for m in messages], **extra)
        return reply.content if isinstance(reply.content, str) else json.dumps(reply.content)


def to_langchain(tool: Tool) -> Any:
    """The same tool as a LangChain ``StructuredTool`` (same name, description and JSON schema)."""
    from langchain_core.tools import StructuredTool

    if not isinstance(tool, Tool):
        raise InvalidOption(f"to_langchain converts a course Tool, got {type(tool).__name__}", fix="wrap the function first: to_langchain(make_tool(fn))")
    return StructuredTool.from_function(func=tool.fn, name=tool.name, description=tool.description, args_schema=tool.parameters)


class ScriptedPolicy:
    """Replies from a fixed list, one per step, the last one repeated (for tests and demonstrations
    of failures)."""

    def __init__(self, replies: Iterable[str]) -> None:
        self.replies = [replies] if isinstance(replies, str) else list(replies)
        if not self.replies:
            raise InvalidOption("a ScriptedPolicy needs at least one reply", fix='pass e.g. [\'{"tool": "final_answer", "arguments": {"answer": "42"}}\']')
        self.calls = 0

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        return reply
