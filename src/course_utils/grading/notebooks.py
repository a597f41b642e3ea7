"""What a lab asks for, which lab a submission is, and the notebook the grader runs in its place.

Part of ``course grade`` (:mod:`course_utils.grading`); no lesson teaches it.

A lab's **check list** is read from the student version in ``labs/``: every top-level call of a
``check_*`` function imported from ``course_utils.checks...`` is one exercise, in the lab's order. The
exercise's name is the one its verdict prints, read from the check's source (``run_check("ask", ...)``).

The **graded notebook** is the learner's notebook with the learner's own check calls taken out and the
lab's own calls put in, each in a cell of its own, as soon as the names it needs are defined (and not
before the place where the learner had it):

>>> cells = ["def ask(b, q):\\n    return q\\n\\ncheck_ask(ask, llm)", "llm = 1", "print('✅ ask: passed')"]
>>> source, removed = strip_check_calls(cells[0], {"check_ask"})
>>> print(source)
def ask(b, q):
    return q
<BLANKLINE>
# [course grade] check call taken out: the lab's own check runs in a cell of its own
>>> removed
{'check_ask': 'check_ask(ask, llm)'}
>>> check = LabCheck("check_ask", "course_utils.checks.setup", "check_ask(ask, llm)", frozenset({"ask", "llm"}), "ask")
>>> anchor(check.needs, [defined_names(c) for c in cells], own_call=0)     # after cell 2, where llm is defined
1
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

CHECKS_PACKAGE = "course_utils.checks"
REMOVED = "# [course grade] check call taken out: the lab's own check runs in a cell of its own"


@dataclass(frozen=True)
class LabCheck:
    """One exercise of a lab: the lab's own call of its check."""

    function: str  # "check_ask"
    module: str  # "course_utils.checks.setup"
    call: str  # the call as the lab writes it: "check_ask(ask, llm)"
    needs: frozenset[str]  # names the call reads from the notebook: {"ask", "llm"}
    exercise: str  # the name its verdict prints: "ask"


@dataclass(frozen=True)
class Lab:
    stem: str  # "00_setup_lab"
    title: str  # "Lab 00 · Setup: talk to your model"
    checks: tuple[LabCheck, ...]

    @property
    def number(self) -> str:
        return self.stem[:2]

    @property
    def modules(self) -> list[str]:
        return sorted({c.module for c in self.checks})


# ----------------------------------------------------------------------------- reading code cells
def python_source(source: str) -> str:
    """A cell's source as plain Python (IPython's ``!cmd`` and ``%magic`` lines become calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def parse(source: str) -> ast.Module | None:
    """The cell's syntax tree, or None when it is not valid Python (it will raise when it runs)."""
    try:
        return ast.parse(python_source(source))
    except (SyntaxError, ValueError):
        return None


def _statements(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """Top-level statements and those nested in if/try/with/for blocks (not in functions or classes)."""
    for stmt in body:
        yield stmt
        if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for name in ("body", "orelse", "finalbody"):
                yield from _statements(getattr(stmt, name, []))
            for handler in getattr(stmt, "handlers", []):
                yield from _statements(handler.body)


def defined_names(source: str) -> set[str]:
    """Names a cell binds at module level (functions, classes, assignments, imports).

    >>> sorted(defined_names("import numpy as np\\nfrom x import y\\na, (b, c) = 1, (2, 3)\\ndef f(): z = 1"))
    ['a', 'b', 'c', 'f', 'np', 'y']
    """
    tree = parse(source)
    if tree is None:
        return set()
    names: set[str] = set()
    for stmt in _statements(tree.body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
        else:
            targets = {ast.Assign: lambda s: s.targets, ast.AnnAssign: lambda s: [s.target], ast.AugAssign: lambda s: [s.target],
                       ast.For: lambda s: [s.target], ast.With: lambda s: [i.optional_vars for i in s.items if i.optional_vars]}
            for kind, get in targets.items():
                if isinstance(stmt, kind):
                    for target in get(stmt):
                        names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def function_globals(source: str) -> dict[str, set[str]]:
    """Module-level names each function (or class) a cell defines reads when it runs.

    >>> sorted(function_globals("def train(text):\\n    return merge(count(text), len(text))")["train"])
    ['count', 'merge']
    """
    import symtable

    try:
        table = symtable.symtable(python_source(source), "<cell>", "exec")
    except (SyntaxError, ValueError):
        return {}

    def reads(t: symtable.SymbolTable) -> set[str]:
        found = {s.get_name() for s in t.get_symbols() if s.is_global()}
        for child in t.get_children():
            found |= reads(child)
        return found

    return {c.get_name(): reads(c) - set(dir(builtins)) for c in table.get_children()
            if c.get_type() in ("function", "class") and c.get_name() not in ("lambda", "listcomp", "genexpr", "setcomp", "dictcomp")}


def _check_call(stmt: ast.stmt, functions: set[str]) -> str | None:
    """The check function a top-level statement calls (``check_x(...)`` or ``v = check_x(...)``), if any."""
    value = stmt.value if isinstance(stmt, ast.Expr | ast.Assign) else None
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in functions:
        return value.func.id
    return None


def strip_check_calls(source: str, functions: set[str]) -> tuple[str, dict[str, str]]:
    """The cell without its top-level calls of ``functions``, and each removed call's source by function."""
    tree = parse(source)
    if tree is None:
        return source, {}
    code = python_source(source)
    lines = code.splitlines()
    removed: dict[str, str] = {}
    spans = []
    for stmt in tree.body:
        name = _check_call(stmt, functions)
        if name:
            removed[name] = ast.unparse(stmt.value)  # type: ignore[attr-defined]
            spans.append((stmt.lineno - 1, stmt.end_lineno or stmt.lineno))
    if not spans:
        return source, {}
    kept = [s for s in tree.body if not _check_call(s, functions)]
    occupied = {line for s in kept for line in range(s.lineno, (s.end_lineno or s.lineno) + 1)}
    if any(line in occupied for start, end in spans for line in range(start + 1, end + 1)):  # `x = 1; check_x(f)`
        return "\n".join([ast.unparse(ast.Module(body=kept, type_ignores=[])), REMOVED]), removed
    for start, end in reversed(spans):
        lines[start:end] = [REMOVED]
    return "\n".join(lines), removed


def call_needs(call: ast.Call) -> frozenset[str]:
    """Names a check call reads from the notebook (not the check itself, builtins or names bound inside it)."""
    loads = {n.id for arg in [*call.args, *(k.value for k in call.keywords)] for n in ast.walk(arg) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = {n.id for n in ast.walk(call) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {a.arg for n in ast.walk(call) if isinstance(n, ast.Lambda) for a in ast.walk(n.args) if isinstance(a, ast.arg)}
    return frozenset(loads - bound - set(dir(builtins)))


# ----------------------------------------------------------------------------- the labs
@functools.cache
def exercise_name(module: str, function: str) -> str:
    """The name ``function``'s verdict prints: the first literal given to ``run_check`` in its source.

    >>> exercise_name("course_utils.checks.setup", "check_tpot")
    'tpot'
    """
    spec = importlib.util.find_spec(module)
    if spec and spec.origin:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == function:
                for call in ast.walk(node):
                    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "run_check"
                            and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
                        return call.args[0].value
    return function.removeprefix("check_")


def check_imports(sources: Iterable[str]) -> dict[str, str]:
    """``check_*`` names imported from the course's checks in these cells -> their module."""
    found: dict[str, str] = {}
    for source in sources:
        tree = parse(source)
        for stmt in _statements(tree.body if tree else []):
            if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith(CHECKS_PACKAGE):
                found.update({a.asname or a.name: stmt.module for a in stmt.names if a.name.startswith("check_")})  # type: ignore[misc]
    return found


def title_of(nb: Any) -> str:
    """The notebook's first Markdown heading ("" if it has none)."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in _text(cell.get("source", "")).splitlines():
                if line.startswith("#"):
                    return line.lstrip("# ").strip()
    return ""


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source


def code_sources(nb: Any) -> list[str]:
    return [_text(c.get("source", "")) for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def read_lab(path: Path) -> Lab:
    """The check list of the student lab at ``path``."""
    nb = nbformat.read(path, as_version=4)
    sources = code_sources(nb)
    imported = check_imports(sources)
    checks = []
    for source in sources:
        tree = parse(source)
        for stmt in tree.body if tree else []:
            name = _check_call(stmt, set(imported))
            if name:
                call = stmt.value  # type: ignore[attr-defined]
                checks.append(LabCheck(name, imported[name], ast.unparse(call), call_needs(call), exercise_name(imported[name], name)))
    return Lab(path.stem, title_of(nb), tuple(checks))


def course_labs(root: Path) -> dict[str, Lab]:
    """Every student lab of the course at ``root``, by file stem ("00_setup_lab")."""
    return {p.stem: read_lab(p) for p in sorted((root / "labs").glob("[0-9][0-9]_*_lab.ipynb"))}


@dataclass(frozen=True)
class Identified:
    lab: Lab | None
    how: str  # "title", "lab number in the title", "imported checks", "file name" or why none matched
    notes: tuple[str, ...] = field(default=())


def identify(nb: Any, file_name: str, labs: dict[str, Lab]) -> Identified:
    """Which lab ``nb`` is, read from the notebook first (title, then its checks), the file name last."""
    title = title_of(nb)
    by_title = [lab for lab in labs.values() if title and (title == lab.title or title.startswith(lab.title + " ("))]  # "(solutions)"
    number = re.match(r"lab\s+(\d{2})\b", title, re.IGNORECASE)
    by_number = [lab for lab in labs.values() if number and lab.number == number.group(1)]
    modules = set(check_imports(code_sources(nb)).values())
    by_checks = [lab for lab in labs.values() if modules and set(lab.modules) == modules]
    by_file = [lab for lab in labs.values() if file_name[:3] == lab.stem[:3]]
    for found, how in ((by_title, "title"), (by_number, "lab number in the title"), (by_checks, "imported checks"), (by_file, "file name")):
        if len(found) == 1:
            lab = found[0]
            notes = []
            if how != "title":
                notes.append(f"the lab was recognised by its {how} (title {title!r} is not a lab's)")
            if by_file and by_file[0] is not lab:
                notes.append(f"the file name says {by_file[0].stem} but the notebook is {lab.title!r}")
            return Identified(lab, how, tuple(notes))
    return Identified(None, f"title {title!r} and file name {file_name!r} match none of the course's labs")


# ----------------------------------------------------------------------------- the graded notebook
def anchor(needs: frozenset[str] | set[str], defined: Sequence[set[str]], own_call: int | None) -> int | None:
    """After which cell to run a check: once every name it ``needs`` is defined, and not before the
    learner's own call of it (a notebook that never defines them all: None, run it at the end)."""
    seen: set[str] = set()
    ready = None
    for i, names in enumerate(defined):
        seen |= names
        if needs <= seen:
            ready = i
            break
    if ready is None:
        return None
    return max(ready, own_call) if own_call is not None else ready


@dataclass
class Plan:
    """The notebook the grader executes and what each of its cells is."""

    notebook: Any
    roles: list[tuple[str, int]]  # per cell: ("baseline", -1), ("learner", cell index), ("check", check index)
    notes: dict[int, str]  # check index -> how the check was placed, when the learner's notebook differs

    def cell_of_check(self, index: int) -> int:
        return self.roles.index(("check", index))


def check_cell(nonce: str, index: int, check: LabCheck) -> str:
    """The source of the grader's cell that runs ``check`` (the real function, fetched from its module)."""
    call = ast.parse(check.call, mode="eval").body
    call.func = ast.Name("__course_check", ast.Load())  # type: ignore[attr-defined]
    return ("# [course grade] the lab's own check, added by the grader\n"
            "__import__('course_utils.grading.kernel', fromlist=['run_check_cell']).run_check_cell(\n"
            f"    {nonce!r}, {index}, {check.module!r}, {check.function!r}, lambda __course_check: {ast.unparse(call)})")


def baseline_cell(nonce: str, lab: Lab) -> str:
    return ("# [course grade] before any of the learner's code: a fingerprint of the course's check code\n"
            f"__import__('course_utils.grading.kernel', fromlist=['baseline']).baseline({nonce!r}, {json.dumps(lab.modules)})")


def prepare(nb: Any, lab: Lab, nonce: str) -> Plan:
    """The graded notebook for learner notebook ``nb`` of ``lab``."""
    functions = {c.function for c in lab.checks}
    cells, defined, own_calls, own_sources = [], [], {}, {}
    reads: dict[str, set[str]] = {}  # function -> the module-level names it uses (its last definition)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            cells.append(cell)
            defined.append(set())
            continue
        source, removed = strip_check_calls(_text(cell.source), functions)
        for name, call in removed.items():
            own_calls[name], own_sources[name] = i, call
        cells.append(nbformat.v4.new_code_cell(source))
        defined.append(defined_names(source))
        reads.update(function_globals(source))
    everywhere = set().union(*defined)
    after: dict[int | None, list[int]] = {}
    notes = {}
    for k, check in enumerate(lab.checks):
        where = anchor(uses(check.needs, reads, everywhere), defined, own_calls.get(check.function))
        after.setdefault(where, []).append(k)
        if where is None:
            notes[k] = f"the notebook never defines {', '.join(sorted(check.needs))} before the end"
        elif check.function not in own_calls:
            notes[k] = f"the notebook has no call of {check.function}(): the lab's check ran after cell {where + 1}"
        elif not _same_call(own_sources[check.function], check.call):
            notes[k] = f"the call of {check.function}() in cell {own_calls[check.function] + 1} was edited: the lab's own call ran"
    graded = nbformat.v4.new_notebook(metadata=nb.get("metadata", {}))
    graded.cells = [nbformat.v4.new_code_cell(baseline_cell(nonce, lab))]
    roles = [("baseline", -1)]
    for i, cell in enumerate(cells):
        graded.cells.append(cell)
        roles.append(("learner", i))
        for k in after.get(i, []):
            graded.cells.append(nbformat.v4.new_code_cell(check_cell(nonce, k, lab.checks[k])))
            roles.append(("check", k))
    for k in after.get(None, []):
        graded.cells.append(nbformat.v4.new_code_cell(check_cell(nonce, k, lab.checks[k])))
        roles.append(("check", k))
    return Plan(graded, roles, notes)


def uses(needs: frozenset[str], reads: dict[str, set[str]], everywhere: set[str]) -> set[str]:
    """``needs`` and every name the notebook defines that the needed functions use, directly or through
    others (``train_bpe`` calls ``merge_pair``: its check waits for both, wherever the cells were moved).

    >>> sorted(uses(frozenset({"train"}), {"train": {"merge", "split"}, "merge": {"helper"}}, {"train", "merge", "helper"}))
    ['helper', 'merge', 'train']
    """
    found, todo = set(needs), list(needs)
    while todo:
        for name in reads.get(todo.pop(), ()):
            if name in everywhere and name not in found:
                found.add(name)
                todo.append(name)
    return found


def _same_call(a: str, b: str) -> bool:
    return ast.dump(ast.parse(a, mode="eval")) == ast.dump(ast.parse(b, mode="eval"))
