"""The three tools of lesson 10: a calculator, a search over a RAG store, a sandboxed Python runner.

Taught in lesson 10 (sections 1 and 2). Each one treats the model's text as untrusted input:

* :func:`calculate` parses arithmetic with :mod:`ast` and evaluates only numbers, operators and a
  few functions; it never calls ``eval`` and refuses work that would freeze the machine.
* :func:`make_search_tool` wraps any :mod:`course_utils.rag` retriever; :func:`handbook_store`
  fills one with the course's made-up handbook (``data/agent_handbook.jsonl``), facts no model
  can know from pre-training.
* :func:`make_python_tool` runs code only in :func:`course_utils.sandbox.run_python`: a separate
  process with a time limit, a memory limit, no network and its own temporary folder.

>>> calculate("17 * 23"), calculate("(45 + 55) * 12")
(391, 1200)
>>> calculate("__import__('os')")
Traceback (most recent call last):
...
course_utils.agents.tools.ToolError: the calculator only does arithmetic; it refuses a call to '__import__'. Fix: use numbers, + - * / // % **, parentheses, pi, e and sqrt, abs, round, min, max, log, exp
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from .tools import Tool, ToolError, make_tool

if TYPE_CHECKING:
    from ..rag import Retriever

__all__ = ["HANDBOOK_FILE", "MAX_EXPONENT", "MAX_LENGTH", "MAX_MAGNITUDE", "calculate", "handbook_store",
           "load_handbook", "make_python_tool", "make_search_tool"]

# ============================================================================= the calculator
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"sqrt": math.sqrt, "abs": abs, "round": round, "min": min, "max": max, "log": math.log, "exp": math.exp}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT = 100  # 9**9**9 would take minutes and gigabytes: refuse big powers
MAX_MAGNITUDE = 1e100  # every number, given or computed, stays within +-1e100
MAX_LENGTH = 200  # characters: a longer "expression" is a paste, not a calculation
_ALLOWED = f"use numbers, + - * / // % **, parentheses, pi, e and {', '.join(_FUNCTIONS)}"
_WHAT = {ast.Attribute: "attribute access (x.y)", ast.Subscript: "indexing (x[...])", ast.Compare: "comparisons",
         ast.BoolOp: "and/or", ast.Lambda: "lambda", ast.List: "a list", ast.Dict: "a dictionary",
         ast.Set: "a set", ast.IfExp: "if/else", ast.Starred: "*unpacking", ast.NamedExpr: ":= assignment",
         ast.JoinedStr: "an f-string", ast.ListComp: "a comprehension", ast.GeneratorExp: "a generator"}


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
    if len(text) > MAX_LENGTH:
        raise ToolError(f"the expression is too long ({len(text)} characters, over {MAX_LENGTH})", fix="split the calculation into steps")
    try:
        tree = ast.parse(text.replace(",", "") if re.fullmatch(r"[\d,.\s]+", text) else text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ToolError(f"{expression!r:.60} is not an arithmetic expression", fix="use numbers and + - * / ** ( ) only") from None
    try:
        value = _evaluate(tree.body)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError, RecursionError) as err:
        raise ToolError(f"cannot compute {expression!r:.60}: {err}", fix="check the numbers") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 and "/" not in text and "sqrt" not in text:
        value = int(value)
    return value


def _number(value: Any) -> Any:
    """``value`` if it is a real number of reasonable size, else a ToolError."""
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise ToolError("the result is not a real number of reasonable size", fix=f"keep numbers within ±{MAX_MAGNITUDE:g}")
    return value


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return _number(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or abs(left) > 1e6):
            raise ToolError(f"{left} ** {right} is too big to compute here", fix=f"keep exponents at or below {MAX_EXPONENT}")
        return _number(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords:
            raise ToolError(f"{node.func.id}() takes plain values here, not keyword arguments", fix=f"write e.g. {node.func.id}(2.5)")
        return _number(_FUNCTIONS[node.func.id](*[_evaluate(a) for a in node.args]))
    raise ToolError(f"the calculator only does arithmetic; it refuses {_describe(node)}", fix=_ALLOWED)


def _describe(node: ast.AST) -> str:
    """What a refused piece of the expression is, in words a learner (or a model) understands."""
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Call):
        return f"a call to {ast.unparse(node.func)!r}"
    if isinstance(node, ast.Constant):
        return f"the value {node.value!r:.30}" + (" (text)" if isinstance(node.value, str) else "")
    if isinstance(node, ast.Tuple):
        return "several values separated by commas (write 1234, not 1,234)"
    return next((words for kind, words in _WHAT.items() if isinstance(node, kind)), type(node).__name__)


# ============================================================================= search and Python
def make_search_tool(retriever: Retriever, k: int = 2, max_chars: int = 300, name: str = "search") -> Tool:
    """A tool that searches a RAG store (any :mod:`course_utils.rag` retriever) and returns the
    ``k`` best passages as numbered text."""

    def search(query: str) -> str:
        """Search the course handbook for facts. Returns the best matching passages.

        Args:
            query: what to look for, in a few words
        """
        from ..rag import retrieve

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
        from ..sandbox import run_python as sandboxed

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


# ============================================================================= the demo handbook
HANDBOOK_FILE = "agent_handbook.jsonl"


@functools.cache
def _handbook(path: str | None) -> tuple[tuple[str, str], ...]:
    from ..datafiles import data_path, read_jsonl

    source = path or data_path(HANDBOOK_FILE)
    entries: dict[str, str] = {}
    for number, row in enumerate(read_jsonl(source, required={"topic", "text"}), 1):
        topic, text = row["topic"], row["text"]
        if not isinstance(topic, str) or not isinstance(text, str) or not topic.strip() or not text.strip():
            raise DataError(f"{HANDBOOK_FILE} entry {number} needs a non-empty text 'topic' and 'text'", fix=f"fix or restore {source}")
        if topic in entries:
            raise DataError(f"{HANDBOOK_FILE} has the topic {topic!r} twice", fix=f"give each entry of {source} its own topic")
        entries[topic] = text
    return tuple(entries.items())


def load_handbook(path: str | None = None) -> dict[str, str]:
    """The made-up company handbook of lesson 10, ``{topic: text}`` (``data/agent_handbook.jsonl``).

    Facts no model can know from pre-training (the guest Wi-Fi password, the mascot's name), so
    answering a question about them needs the search tool. Also importable as ``HANDBOOK``.

    >>> load_handbook()["mascot"][:34]
    'The office mascot is a tortoise na'
    """
    return dict(_handbook(None if path is None else str(path)))


def handbook_store(path: str, name: str = "handbook") -> Any:
    """A :class:`course_utils.rag.VectorStore` at ``path`` holding the handbook (one chunk per entry)."""
    from ..rag import VectorStore, chunk_documents

    store = VectorStore(path, name)
    store.add(chunk_documents(load_handbook(), "none"))
    return store


def __getattr__(name: str) -> Any:  # HANDBOOK is read from data/ when first used, not at import
    if name == "HANDBOOK":
        return load_handbook()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
