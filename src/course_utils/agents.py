"""Agents: a model that calls tools in a loop until it can answer.

The pieces, one function or class each::

    calc = make_tool(calculate)                  # a plain function -> name, description, JSON schema
    tools = [calc, make_search_tool(store), make_python_tool()]
    agent = Agent(BackendPolicy(get_backend("auto")), tools, max_steps=4)
    run = agent.run("What is 17 times 23?")
    print(run.show())                            # thought -> action -> observation -> ... -> answer

* **Tools** are plain Python functions. :func:`tool_schema` reads the signature (type hints,
  defaults) and the docstring (first paragraph = description, ``Args:`` lines = parameter
  descriptions) with :mod:`inspect` and :mod:`typing` and writes the JSON schema a model sees.
* **Tool calls are JSON**: ``{"thought": ..., "tool": ..., "arguments": {...}}``. With
  ``grammar=True`` the backend constrains decoding to :func:`step_schema` (llama.cpp turns the JSON
  schema into a grammar and masks every token that would break it), so even a 135M model writes a
  parseable call naming a real tool with arguments of the right types. The grammar constrains the
  *format*, not the *judgement*: the model can still pick the wrong tool or the wrong numbers.
* **The loop** (ReAct: reason, act, observe) runs at most ``max_steps`` model calls. Every problem:
  text that is not JSON, an unknown tool, bad arguments, a tool that raises, the step limit: becomes
  an ``error`` line in the trace and an observation the model can react to. The loop never raises
  because of what the model wrote, and never runs forever.
* **The tools of lesson 10**: :func:`calculate` (arithmetic parsed with :mod:`ast`, never ``eval``),
  :func:`make_search_tool` (search a RAG store from :mod:`course_utils.rag`), and
  :func:`make_python_tool` (code runs only in :func:`course_utils.sandbox.run_python`: a separate
  process with a time limit, a memory limit, no network and its own temporary folder).
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import CourseError, DataError, InvalidOption

if TYPE_CHECKING:
    from .backends.base import Backend
    from .rag import Retriever

FINAL = "final_answer"  # the pseudo-tool that ends the loop


class ToolError(CourseError):
    """A tool could not do what it was asked (bad input, refused expression, failed code)."""


# ============================================================================= tools and their schemas
_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def json_type(annotation: Any) -> dict[str, Any]:
    """The JSON schema of one Python type hint.

    >>> json_type(int), json_type(list[str])
    ({'type': 'integer'}, {'type': 'array', 'items': {'type': 'string'}})
    >>> json_type(typing.Literal["C", "F"])
    {'type': 'string', 'enum': ['C', 'F']}
    """
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        schema: dict[str, Any] = {"enum": list(args)}
        if len(kinds) == 1 and kinds.pop() in _JSON_TYPES:
            schema = {"type": _JSON_TYPES[type(args[0])], **schema}
        return schema
    if origin in (list, tuple, set, frozenset, Sequence, Iterable):
        items = [a for a in args if a is not Ellipsis]
        return {"type": "array", "items": json_type(items[0])} if items else {"type": "array"}
    if origin in (dict, Mapping):
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X (the default says it may be left out)
            return json_type(options[0])
        return {"anyOf": [json_type(a) for a in options]}
    if annotation in (list, tuple):
        return {"type": "array"}
    if annotation is dict:
        return {"type": "object"}
    raise InvalidOption(f"no JSON schema for the type hint {annotation!r}", fix="use str, int, float, bool, Literal[...], list[...] or dict in tool signatures")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google-style docstring.

    >>> parse_docstring('''Add two numbers.
    ...
    ...     Args:
    ...         a: the first number
    ...         b: the second one
    ...     ''')
    ('Add two numbers.', {'a': 'the first number', 'b': 'the second one'})
    """
    text = inspect.cleandoc(doc or "")
    parts = re.split(r"^(?:Args|Arguments|Parameters):\s*$", text, maxsplit=1, flags=re.M)
    head, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    description = " ".join(head.split("\n\n")[0].split())
    params: dict[str, str] = {}
    current = None
    for line in rest.splitlines():
        if not line.strip():
            continue
        if re.match(r"^\S", line):  # a new section (Returns:, Raises:...) ends the arguments
            break
        m = re.match(r"^\s+(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
        if m:
            current = m.group(1).lstrip("*")
            params[current] = m.group(2).strip()
        elif current:
            params[current] = f"{params[current]} {line.strip()}".strip()
    return description, params


def tool_schema(fn: Callable[..., Any], name: str | None = None) -> dict[str, Any]:
    """The function-calling schema of ``fn``: ``{"name", "description", "parameters"}``.

    ``parameters`` is a JSON schema built from the signature: one property per parameter, typed by
    its hint, described by the docstring's ``Args:`` line; parameters without a default are
    ``required``. This is the format OpenAI-style APIs, llama.cpp's server and LangChain use.

    >>> def area(width: float, height: float = 1.0) -> float:
    ...     '''Area of a rectangle.
    ...
    ...     Args:
    ...         width: in metres
    ...         height: in metres
    ...     '''
    ...     return width * height
    >>> tool_schema(area)["parameters"]["required"]
    ['width']
    """
    if not callable(fn):
        raise InvalidOption(f"a tool must be a function, got {type(fn).__name__}", fix="pass a plain Python function")
    description, docs = parse_docstring(inspect.getdoc(fn))
    if not description:
        raise InvalidOption(f"{getattr(fn, '__name__', fn)!r} has no docstring: the model would not know what it does", fix="add a one-line docstring saying what the tool does")
    hints = typing.get_type_hints(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidOption(f"tool {fn.__name__!r} takes *{pname}: a model cannot fill that in", fix="give the tool named parameters only")
        if pname not in hints:
            raise InvalidOption(f"parameter {pname!r} of {fn.__name__!r} has no type hint", fix=f"annotate it, e.g. {pname}: str")
        prop = json_type(hints[pname])
        if pname in docs:
            prop["description"] = docs[pname]
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        elif param.default is None or isinstance(param.default, str | int | float | bool):
            prop["default"] = param.default
        properties[pname] = prop
    return {"name": name or fn.__name__, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}


@dataclass(frozen=True)
class Tool:
    """A function the model may call, with the schema it is shown."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any] = field(repr=False)

    def spec(self) -> dict[str, Any]:
        """OpenAI-style ``{"type": "function", "function": {...}}`` (what LangChain and servers take)."""
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    def __call__(self, **arguments: Any) -> Any:
        return self.fn(**validate_arguments(self, arguments))


def make_tool(fn: Callable[..., Any], name: str | None = None) -> Tool:
    """Wrap a plain function as a :class:`Tool` (schema from its signature and docstring)."""
    schema = tool_schema(fn, name)
    return Tool(schema["name"], schema["description"], schema["parameters"], fn)


def validate_arguments(tool: Tool, arguments: Any) -> dict[str, Any]:
    """Check ``arguments`` against the tool's schema; return them (ints accepted as numbers).

    Raises :class:`ToolError` saying exactly what is wrong: a model reads that message as an
    observation and can correct itself.
    """
    if not isinstance(arguments, Mapping):
        raise ToolError(f"arguments for {tool.name} must be a JSON object, got {type(arguments).__name__}", fix=f"send {{\"tool\": \"{tool.name}\", \"arguments\": {{...}}}}")
    props, required = tool.parameters.get("properties", {}), tool.parameters.get("required", [])
    missing = [p for p in required if p not in arguments]
    unknown = [p for p in arguments if p not in props]
    if missing or unknown:
        problem = "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "", f"unknown {', '.join(unknown)}" if unknown else "") if x)
        raise ToolError(f"bad arguments for {tool.name}: {problem}", fix=f"{tool.name} takes {', '.join(props) or 'no arguments'}")
    clean = dict(arguments)
    for pname, value in arguments.items():
        clean[pname] = _check_value(tool.name, pname, value, props[pname])
    return clean


def _check_value(tool: str, pname: str, value: Any, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    ok = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
          "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
          "array": lambda v: isinstance(v, list), "object": lambda v: isinstance(v, dict)}
    if kind in ok and not ok[kind](value):
        raise ToolError(f"argument {pname!r} of {tool} must be a {kind}, got {type(value).__name__} {value!r:.40}", fix=f"pass {pname} as a JSON {kind}")
    if "enum" in schema and value not in schema["enum"]:
        raise ToolError(f"argument {pname!r} of {tool} must be one of {schema['enum']}, got {value!r:.40}", fix="use one of the listed values")
    return float(value) if kind == "number" else value


# ============================================================================= the three tools
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"sqrt": math.sqrt, "abs": abs, "round": round, "min": min, "max": max, "log": math.log, "exp": math.exp}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT = 100  # 9**9**9 would take minutes and gigabytes: refuse big powers
MAX_MAGNITUDE = 1e100


def calculate(expression: str) -> float:
    """Evaluate an arithmetic expression with + - * / // % ** and parentheses.

    Args:
        expression: arithmetic only, for example "(17 * 23) / 4" or "sqrt(2) * 10"

    The text is parsed with :mod:`ast` and only numbers, the operators above, ``pi``, ``e`` and a
    few functions (sqrt, abs, round, min, max, log, exp) are evaluated; anything else (names,
    attributes, strings, imports) is refused. Never ``eval`` model output.

    >>> calculate("2 + 3 * 4"), calculate("2 ** 10"), calculate("sqrt(16)")
    (14, 1024, 4.0)
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError(f"the calculator needs an arithmetic expression as text, got {expression!r:.40}", fix='send e.g. {"expression": "17 * 23"}')
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if len(text) > 200:
        raise ToolError("the expression is too long (over 200 characters)", fix="split the calculation into steps")
    try:
        tree = ast.parse(text.replace(",", "") if re.fullmatch(r"[\d,.\s]+", text) else text, mode="eval")
    except SyntaxError:
        raise ToolError(f"{expression!r:.60} is not an arithmetic expression", fix="use numbers and + - * / ** ( ) only") from None
    try:
        value = _evaluate(tree.body)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as err:
        raise ToolError(f"cannot compute {expression!r:.60}: {err}", fix="check the numbers") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 and "/" not in text and "sqrt" not in text:
        value = int(value)
    return value


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or abs(left) > 1e6):
            raise ToolError(f"{left} ** {right} is too big to compute here", fix=f"keep exponents at or below {MAX_EXPONENT}")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex) or abs(result) > MAX_MAGNITUDE:
            raise ToolError("the result is not a real number of reasonable size", fix="check the expression")
        return result
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        return _FUNCTIONS[node.func.id](*[_evaluate(a) for a in node.args])
    what = type(node).__name__ if not isinstance(node, ast.Name) else f"the name {node.id!r}"
    if isinstance(node, ast.Call):
        what = f"a call to {ast.unparse(node.func)!r}"
    raise ToolError(f"the calculator only does arithmetic; it refuses {what}", fix=f"use numbers, + - * / // % **, parentheses, pi, e and {', '.join(_FUNCTIONS)}")


def make_search_tool(retriever: Retriever, k: int = 2, max_chars: int = 300, name: str = "search") -> Tool:
    """A tool that searches a RAG store (any :mod:`course_utils.rag` retriever) and returns the
    ``k`` best passages as numbered text."""

    def search(query: str) -> str:
        """Search the course handbook for facts. Returns the best matching passages.

        Args:
            query: what to look for, in a few words
        """
        from .rag import retrieve

        if not isinstance(query, str) or not query.strip():
            raise ToolError("the search query is empty", fix='send e.g. {"query": "library opening hours"}')
        hits = retrieve(retriever, query, k)
        return "\n".join(f"[{n}] {h.text[:max_chars].strip()}" for n, h in enumerate(hits, 1)) or "no results"

    return make_tool(search, name)


def make_python_tool(timeout_s: float = 5.0, memory_mb: int = 256, name: str = "run_python") -> Tool:
    """A tool that runs Python code in :mod:`course_utils.sandbox` (a separate, limited process).

    The code's standard output is the observation; an error, a time-out or a blocked action is
    reported as a :class:`ToolError` (which the agent turns into an observation).
    """

    def run_python(code: str) -> str:
        """Run a short Python program and return what it prints. Use print() to show the result.

        Args:
            code: a complete Python program, e.g. "print(sum(range(10)))"
        """
        from .sandbox import run_python as sandboxed

        if not isinstance(code, str) or not code.strip():
            raise ToolError("there is no code to run", fix='send e.g. {"code": "print(2 + 2)"}')
        result = sandboxed(code, timeout_s=timeout_s, memory_mb=memory_mb)
        if result.timed_out:
            raise ToolError(f"the code was stopped after {timeout_s:g} s (time limit)", fix="make it finish sooner: no infinite loops")
        if not result.ok:
            tail = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
            raise ToolError(f"the code failed: {tail[:300]}", fix="fix the error and run it again")
        out = result.stdout.strip()
        return out[:1000] if out else "(the code printed nothing: use print())"

    return make_tool(run_python, name)


# ============================================================================= demo knowledge base
# A tiny made-up handbook: facts no model can know from pre-training, so answering needs the search tool.
HANDBOOK = {
    "library": "The Lantern Street library opens at 9:30 on weekdays and closes at 18:00. On Saturdays it opens at 10:00 and closes at 14:00; it is closed on Sundays.",
    "wifi": "The guest Wi-Fi network at the Lantern Street office is called lantern-guest and its password is tidepool42. It is changed every month.",
    "parking": "Staff parking is in the Birch Lane garage, level 3. A monthly parking permit costs 45 euros and is ordered from the front desk.",
    "canteen": "The canteen serves lunch from 11:45 to 14:15. Thursday is soup day; the soup costs 3 euros.",
    "mascot": "The office mascot is a tortoise named Pebble, who is 31 years old and lives in the garden.",
    "support": "The IT support desk is on the second floor, room 214. Its phone extension is 4417.",
    "holidays": "Every employee has 27 days of paid holiday a year. Up to 5 unused days can be carried over to the next year.",
    "founding": "The company was founded in 1987 by Ada Morrow in a former bakery on Lantern Street.",
    "printer": "The colour printer on the first floor is called Magpie. Printing costs 8 cents per colour page.",
    "bikes": "There are 12 shared bicycles in the courtyard. A bicycle may be borrowed for up to 3 days.",
}


def handbook_store(path: str, name: str = "handbook") -> Any:
    """A :class:`course_utils.rag.VectorStore` at ``path`` holding :data:`HANDBOOK` (one chunk per entry)."""
    from .rag import VectorStore, chunk_documents

    store = VectorStore(path, name)
    store.add(chunk_documents(HANDBOOK, "none"))
    return store


# ============================================================================= one step: the JSON call
def step_schema(tools: Sequence[Tool], thought: bool = True, max_thought: int = 60) -> dict[str, Any]:
    """JSON schema of one agent step: a call of one of ``tools`` or the final answer.

    One ``anyOf`` branch per tool fixes the tool's name *and* its argument schema together, so a
    grammar built from it admits only calls with valid arguments for the named tool.
    """
    def branch(name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        if thought:
            props["thought"] = {"type": "string", "maxLength": max_thought}
        props["tool"] = {"const": name}
        props["arguments"] = _strict(parameters)
        return {"type": "object", "properties": props, "required": list(props)}

    final = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 120}}, "required": ["answer"]}
    return {"anyOf": [branch(t.name, t.parameters) for t in tools] + [branch(FINAL, final)]}


def _strict(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The argument schema with every property required, no extras, bounded strings (for a grammar)."""
    props = {}
    for k, v in parameters.get("properties", {}).items():
        v = {kk: vv for kk, vv in v.items() if kk not in ("description", "default")}
        if v.get("type") == "string":
            v.setdefault("maxLength", 100)
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
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "tool" in obj:
            args = obj.get("arguments", {})
            if not isinstance(args, dict):
                raise ToolError(f"'arguments' must be a JSON object, got {json.dumps(args)[:60]}", fix='send {"tool": ..., "arguments": {"name": value}}')
            return ToolCall(str(obj["tool"]), args, str(obj.get("thought", "")))
    raise ToolError(f"no tool call found in the reply {text.strip()[:80]!r}", fix='reply with one JSON object: {"thought": ..., "tool": ..., "arguments": {...}}')


# ============================================================================= policies: who writes the steps
class Policy(typing.Protocol):
    """Anything that turns the conversation so far into the next step's text."""

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str: ...


class BackendPolicy:
    """Ask a course backend for each step; ``grammar=True`` constrains it to the step schema."""

    def __init__(self, backend: Backend, grammar: bool = True, max_tokens: int = 160, **options: Any) -> None:
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
        self.chat_model, self.grammar = chat_model, grammar

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        extra = {"response_format": {"type": "json_object", "schema": schema}} if self.grammar and schema else {}
        reply = self.chat_model.invoke([(m["role"], m["content"]) for m in messages], **extra)
        return reply.content if isinstance(reply.content, str) else json.dumps(reply.content)


def to_langchain(tool: Tool) -> Any:
    """The same tool as a LangChain ``StructuredTool`` (same name, description and JSON schema)."""
    from langchain_core.tools import StructuredTool

    return StructuredTool.from_function(func=tool.fn, name=tool.name, description=tool.description, args_schema=tool.parameters)


class ScriptedPolicy:
    """Replies from a fixed list, one per step (for tests and demonstrations of failures)."""

    def __init__(self, replies: Iterable[str]) -> None:
        self.replies = list(replies)
        self.calls = 0

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        return reply


# ============================================================================= the loop
SYSTEM_PROMPT = """You are an assistant that uses tools. Tools:
{tools}
- final_answer(answer): give the answer to the user.
Reply with one JSON object only: {{"thought": "<why>", "tool": "<a tool name>", "arguments": {{<its arguments>}}}}.
Use a tool first, read its result, then reply with the final_answer tool."""


def describe_tools(tools: Sequence[Tool]) -> str:
    """One line per tool: ``- name(arg: type): description``."""
    lines = []
    for t in tools:
        args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in t.parameters.get("properties", {}).items())
        lines.append(f"- {t.name}({args}): {t.description}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Step:
    """One model call: what it wrote, the call it made, and what came back."""

    index: int
    raw: str
    thought: str = ""
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    observation: str | None = None
    error: str | None = None  # what went wrong in this step (bad JSON, unknown tool, tool error)


@dataclass(frozen=True)
class AgentRun:
    """Everything that happened: the question, each step, the answer and why the loop stopped."""

    question: str
    steps: list[Step]
    answer: str | None
    stopped: str  # "answer", "step_limit" or "policy_error"
    messages: list[dict[str, str]]

    @property
    def tools_used(self) -> list[str]:
        return [s.tool for s in self.steps if s.tool and s.tool != FINAL and s.error is None]

    @property
    def errors(self) -> list[str]:
        return [s.error for s in self.steps if s.error]

    def show(self, width: int = 110) -> str:
        """The readable trace: question, then thought / action / observation per step, then the end."""
        def cut(text: str) -> str:
            text = " ".join(str(text).split())
            return text if len(text) <= width else text[: width - 3] + "..."

        lines = [f"Question: {self.question}"]
        for s in self.steps:
            if s.thought:
                lines.append(f"  {s.index}. thought:     {cut(s.thought)}")
            if s.tool is not None:
                lines.append(f"  {s.index}. action:      {s.tool}({cut(json.dumps(s.arguments, ensure_ascii=False))})")
            if s.observation is not None:
                lines.append(f"  {s.index}. observation: {cut(s.observation)}")
            if s.error:
                lines.append(f"  {s.index}. error:       {cut(s.error)}")
        end = {"answer": f"Answer: {self.answer}", "step_limit": f"Stopped: no answer within {len(self.steps)} steps (the step limit)",
               "policy_error": f"Stopped: the model could not be asked ({self.steps[-1].error if self.steps else ''})"}
        lines.append(end.get(self.stopped, self.stopped))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.show()


class Agent:
    """A ReAct-style loop: ask the policy for a step, run the tool, show it the result, repeat.

    ``max_steps`` bounds the number of model calls; ``grammar`` is handled by the policy (the loop
    always passes :func:`step_schema`; :class:`BackendPolicy` decides whether to use it). With
    ``answer_on_last_step`` the last allowed step gets a schema that admits only ``final_answer``
    (and the model is told to answer now): with a grammar, the run then ends with an answer instead
    of at the step limit. A policy that ignores the schema can still run into the limit.
    """

    def __init__(self, policy: Policy | Backend, tools: Sequence[Tool | Callable[..., Any]], max_steps: int = 4,
                 system_prompt: str = SYSTEM_PROMPT, thought: bool = True, answer_on_last_step: bool = True) -> None:
        from .backends.base import Backend

        self.policy = BackendPolicy(policy) if isinstance(policy, Backend) else policy
        self.tools = {t.name: t for t in (x if isinstance(x, Tool) else make_tool(x) for x in tools)}
        if FINAL in self.tools:
            raise InvalidOption(f"{FINAL!r} is reserved for the agent's answer", fix="give your tool another name")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise InvalidOption(f"max_steps must be a positive whole number, got {max_steps!r}", fix="use e.g. max_steps=4")
        self.max_steps = max_steps
        self.system_prompt = system_prompt.format(tools=describe_tools(list(self.tools.values())))
        self.schema = step_schema(list(self.tools.values()), thought=thought)
        self.answer_on_last_step = answer_on_last_step
        self.final_schema = step_schema([], thought=thought)  # only the final_answer branch

    def call_tool(self, call: ToolCall) -> str:
        """Run one call and return the observation text; raises :class:`ToolError` on any problem."""
        if call.tool not in self.tools:
            raise ToolError(f"there is no tool called {call.tool!r}", fix=f"use one of {', '.join([*self.tools, FINAL])}")
        try:
            result = self.tools[call.tool](**call.arguments)
        except ToolError:
            raise
        except CourseError as err:
            raise ToolError(f"{call.tool} failed: {err}") from None
        except Exception as err:  # a tool's bug must not end the loop: report it as an observation
            raise ToolError(f"{call.tool} raised {type(err).__name__}: {err}", fix="check the arguments") from None
        return result if isinstance(result, str) else json.dumps(result) if isinstance(result, dict | list) else str(result)

    def run(self, question: str) -> AgentRun:
        if not isinstance(question, str) or not question.strip():
            raise InvalidOption(f"the question must be non-empty text, got {question!r:.40}", fix="pass the user's question as a string")
        messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": question.strip()}]
        steps: list[Step] = []
        for index in range(1, self.max_steps + 1):
            last = index == self.max_steps and self.answer_on_last_step and index > 1
            if last:
                messages[-1] = {**messages[-1], "content": messages[-1]["content"] + "\nThis is your last step: reply with final_answer."}
            try:
                raw = self.policy(list(messages), self.final_schema if last else self.schema)
            except CourseError as err:  # the backend itself failed (server gone, context full): stop, explained
                steps.append(Step(index, "", error=f"the model call failed: {err}"))
                return AgentRun(question, steps, None, "policy_error", messages)
            messages.append({"role": "assistant", "content": raw})
            try:
                call = parse_step(raw)
            except ToolError as err:
                steps.append(Step(index, raw, error=str(err)))
                messages.append({"role": "user", "content": f"Error: {err}"})
                continue
            if call.tool == FINAL:
                answer = call.arguments.get("answer")
                if isinstance(answer, str | int | float) and not isinstance(answer, bool) and str(answer).strip():
                    steps.append(Step(index, raw, call.thought, FINAL, call.arguments))
                    return AgentRun(question, steps, str(answer).strip(), "answer", messages)
                err = ToolError("final_answer needs a non-empty 'answer'", fix='send {"tool": "final_answer", "arguments": {"answer": "..."}}')
                steps.append(Step(index, raw, call.thought, FINAL, call.arguments, error=str(err)))
                messages.append({"role": "user", "content": f"Error: {err}"})
                continue
            try:
                observation = self.call_tool(call)
            except ToolError as err:
                steps.append(Step(index, raw, call.thought, call.tool, call.arguments, error=str(err)))
                messages.append({"role": "user", "content": f"Error: {err}"})
                continue
            steps.append(Step(index, raw, call.thought, call.tool, call.arguments, observation=observation))
            messages.append({"role": "user", "content": f"Result of {call.tool}: {observation}\nNow answer the question with final_answer."})
        return AgentRun(question, steps, None, "step_limit", messages)


# ============================================================================= measuring an agent
TASKS_FILE = "agent_tasks.jsonl"


def load_tasks(path: str | None = None) -> list[dict[str, Any]]:
    """The course's agent tasks (``data/agent_tasks.jsonl``): ``{"id", "question", "tool", "answer"}``."""
    from .datafiles import data_path, read_jsonl

    return read_jsonl(path or data_path(TASKS_FILE), required={"id", "question", "tool", "answer"})


def answer_matches(answer: str | None, expected: str) -> bool:
    """True when ``answer`` contains ``expected`` (case and spacing ignored) or, for a number,
    contains that number (to 0.1%, commas ignored).

    >>> answer_matches("The result is 391.", "391"), answer_matches("It is 390", "391")
    (True, False)
    """
    if answer is None:
        return False
    norm = " ".join(str(answer).lower().replace(",", "").split())
    target = " ".join(str(expected).lower().replace(",", "").split())
    try:
        value = float(target)
    except ValueError:
        return target in norm
    for number in re.findall(r"-?\d+(?:\.\d+)?", norm):
        if math.isclose(float(number), value, rel_tol=1e-3, abs_tol=1e-9):
            return True
    return False


@dataclass(frozen=True)
class TaskResult:
    id: str
    expected_tool: str
    first_tool: str | None  # the tool of the first call that parsed (None: no parseable call)
    parsed: bool  # the first reply was a parseable call
    valid_args: bool  # ... and its arguments passed the tool's schema
    right_tool: bool
    correct: bool  # the final answer contains the expected answer
    steps: int
    run: AgentRun = field(repr=False)


def evaluate_agent(agent: Agent, tasks: Sequence[Mapping[str, Any]]) -> list[TaskResult]:
    """Run ``agent`` on each task and score the first call and the final answer."""
    results = []
    for task in tasks:
        run = agent.run(task["question"])
        first = run.steps[0] if run.steps else None
        parsed = first is not None and first.tool is not None
        valid = False
        if parsed and first.tool in agent.tools:
            try:
                validate_arguments(agent.tools[first.tool], first.arguments)
                valid = True
            except ToolError:
                valid = False
        elif parsed and first.tool == FINAL:
            valid = isinstance((first.arguments or {}).get("answer"), str)
        results.append(TaskResult(str(task["id"]), task["tool"], first.tool if parsed else None, parsed, valid,
                                  parsed and first.tool == task["tool"], answer_matches(run.answer, str(task["answer"])),
                                  len(run.steps), run))
    return results


def summarize(results: Sequence[TaskResult]) -> dict[str, float]:
    """Rates over tasks: parseable first call, right tool, valid arguments, right answer, mean steps."""
    n = len(results)
    if not n:
        raise DataError("no results to summarize", fix="run evaluate_agent on at least one task")
    return {"parseable call": sum(r.parsed for r in results) / n, "right tool": sum(r.right_tool for r in results) / n,
            "valid arguments": sum(r.valid_args for r in results) / n, "right answer": sum(r.correct for r in results) / n,
            "mean steps": sum(r.steps for r in results) / n}
