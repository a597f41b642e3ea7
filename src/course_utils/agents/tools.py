"""Tools: a plain Python function becomes a name, a description and a JSON schema a model can read.

Taught in lesson 10 (section 1). :func:`tool_schema` reads the signature (type hints, defaults)
with :mod:`inspect` and :mod:`typing`, and the docstring (first paragraph = description, ``Args:``
lines = parameter descriptions); :class:`Tool` keeps the function beside its schema and checks
every call's arguments against it (:func:`validate_arguments`) before running it.

>>> def add(a: int, b: int = 0) -> int:
...     '''Add two whole numbers.'''
...     return a + b
>>> tool = make_tool(add)
>>> tool.parameters["required"], tool(a=2, b=3)
(['a'], 5)
>>> tool(a="two")
Traceback (most recent call last):
...
course_utils.agents.tools.ToolError: argument 'a' of add must be an integer, got str 'two'. Fix: pass a as a JSON integer
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CourseError, InvalidOption

__all__ = ["FINAL", "Tool", "ToolError", "json_type", "make_tool", "parse_docstring", "tool_schema", "validate_arguments"]

FINAL = "final_answer"  # the pseudo-tool that ends the agent's loop
TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")  # what OpenAI-style APIs accept as a function name


class ToolError(CourseError):
    """A tool could not do what it was asked (bad input, refused expression, failed code)."""


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
    if not callable(fn) or isinstance(fn, type):
        raise InvalidOption(f"a tool must be a function, got {type(fn).__name__} {fn!r:.40}", fix="pass a plain Python function (def name(arg: type) -> ...)")
    label = name or getattr(fn, "__name__", None) or ""
    if not isinstance(label, str) or not TOOL_NAME.match(label):
        raise InvalidOption(f"{label!r} cannot be a tool name (letters, digits, _ and -, at most 64, not starting with a digit)",
                            fix="define the tool with def and a plain name, or pass name='my_tool'")
    description, docs = parse_docstring(inspect.getdoc(fn))
    if not description:
        raise InvalidOption(f"{label!r} has no docstring: the model would not know what it does", fix="add a one-line docstring saying what the tool does")
    try:
        hints = typing.get_type_hints(fn)
        parameters = inspect.signature(fn).parameters
    except (NameError, TypeError, ValueError) as err:  # an unresolvable hint, a builtin without a signature
        raise InvalidOption(f"cannot read the signature of {label!r}: {err}", fix="use a plain def with type hints that name importable types") from None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, param in parameters.items():
        properties[pname] = _property(label, pname, param, hints, docs)
        if param.default is inspect.Parameter.empty:
            required.append(pname)
    return {"name": label, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}


def _property(tool: str, pname: str, param: inspect.Parameter, hints: Mapping[str, Any], docs: Mapping[str, str]) -> dict[str, Any]:
    """The JSON schema of one parameter (a model fills parameters in by name only)."""
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        raise InvalidOption(f"tool {tool!r} takes *{pname}: a model cannot fill that in", fix="give the tool named parameters only")
    if param.kind is param.POSITIONAL_ONLY:
        raise InvalidOption(f"parameter {pname!r} of {tool!r} is positional-only: a model passes arguments by name", fix="remove the / from the signature")
    if pname not in hints:
        raise InvalidOption(f"parameter {pname!r} of {tool!r} has no type hint", fix=f"annotate it, e.g. {pname}: str")
    try:
        prop = json_type(hints[pname])
    except InvalidOption as err:
        raise InvalidOption(f"parameter {pname!r} of {tool!r}: {err.problem}", fix=err.fix) from None
    if pname in docs:
        prop["description"] = docs[pname]
    if param.default is not inspect.Parameter.empty and (param.default is None or isinstance(param.default, str | int | float | bool)):
        prop["default"] = param.default
    return prop


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

    def __call__(self, *args: Any, **arguments: Any) -> Any:
        if args:  # a model's call is a JSON object of named arguments; so is ours
            raise ToolError(f"{self.name} takes named arguments only, got {len(args)} positional", fix=f"call it as {self.name}({', '.join(f'{p}=...' for p in self.parameters.get('properties', {}))})")
        return self.fn(**validate_arguments(self, arguments))


def make_tool(fn: Callable[..., Any], name: str | None = None) -> Tool:
    """Wrap a plain function as a :class:`Tool` (schema from its signature and docstring)."""
    if isinstance(fn, Tool):
        return fn if name is None else Tool(name, fn.description, fn.parameters, fn.fn)
    schema = tool_schema(fn, name)
    return Tool(schema["name"], schema["description"], schema["parameters"], fn)


def validate_arguments(tool: Tool, arguments: Any) -> dict[str, Any]:
    """Check ``arguments`` against the tool's schema; return them (ints accepted as numbers).

    Raises :class:`ToolError` saying exactly what is wrong: a model reads that message as an
    observation and can correct itself.

    >>> def scale(factor: float, times: int = 1) -> float:
    ...     '''Scale a number.'''
    ...     return factor * times
    >>> validate_arguments(make_tool(scale), {"factor": 2, "times": 3.0})
    {'factor': 2.0, 'times': 3}
    >>> validate_arguments(make_tool(scale), {"times": 3})
    Traceback (most recent call last):
    ...
    course_utils.agents.tools.ToolError: bad arguments for scale: missing factor. Fix: scale takes factor, times
    """
    if not isinstance(arguments, Mapping):
        raise ToolError(f"arguments for {tool.name} must be a JSON object, got {type(arguments).__name__}", fix=f"send {{\"tool\": \"{tool.name}\", \"arguments\": {{...}}}}")
    props, required = tool.parameters.get("properties", {}), tool.parameters.get("required", [])
    missing = [p for p in required if p not in arguments]
    unknown = [str(p) for p in arguments if p not in props]
    if missing or unknown:
        problem = "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "", f"unknown {', '.join(unknown)}" if unknown else "") if x)
        raise ToolError(f"bad arguments for {tool.name}: {problem}", fix=f"{tool.name} takes {', '.join(props) or 'no arguments'}")
    return {pname: _check_value(tool.name, pname, value, props[pname]) for pname, value in arguments.items()}


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "array": lambda v: isinstance(v, list), "object": lambda v: isinstance(v, dict)}


def _check_value(tool: str, pname: str, value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` checked against one property's schema (items of arrays too), converted where JSON
    does not tell the types apart: 3 for a number is 3.0, 3.0 for an integer is 3."""
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            try:
                return _check_value(tool, pname, value, option)
            except ToolError:
                continue
        kinds = " or ".join(str(o.get("type", o)) for o in schema["anyOf"])
        raise ToolError(f"argument {pname!r} of {tool} must be {kinds}, got {type(value).__name__} {value!r:.40}", fix=f"pass {pname} as one of those JSON types")
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema counts 3.0 as an integer; models often write it so
    if kind in _CHECKS and not _CHECKS[kind](value):
        article = "an" if kind[0] in "aeiou" else "a"
        raise ToolError(f"argument {pname!r} of {tool} must be {article} {kind}, got {type(value).__name__} {value!r:.40}", fix=f"pass {pname} as a JSON {kind}")
    if "enum" in schema and value not in schema["enum"]:
        raise ToolError(f"argument {pname!r} of {tool} must be one of {schema['enum']}, got {value!r:.40}", fix="use one of the listed values")
    if kind == "number" and not math.isfinite(value):  # json.loads accepts NaN and Infinity
        raise ToolError(f"argument {pname!r} of {tool} must be a finite number, got {value!r}", fix="pass an ordinary number")
    if kind == "array" and "items" in schema:
        return [_check_value(tool, f"{pname}[{i}]", item, schema["items"]) for i, item in enumerate(value)]
    return float(value) if kind == "number" else value
