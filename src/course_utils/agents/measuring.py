"""Measuring an agent: tasks with the expected tool and answer, scores per task, rates, failure kinds.

Taught in lesson 10 (section 5). For each task the **first** step is scored (a parseable call? the
right tool? arguments valid for that tool?) and so is the **final answer** (does it contain the
expected answer?). :func:`failure_kind` names why a task failed, so a change to the agent can be
judged by which failures it removes.

>>> from .builtin_tools import calculate
>>> from .loop import Agent
>>> from .policies import ScriptedPolicy
>>> steps = ['{"tool": "calculate", "arguments": {"expression": "17 * 23"}}',
...          '{"tool": "final_answer", "arguments": {"answer": "It is 391."}}']
>>> task = {"id": "calc-01", "question": "What is 17 times 23?", "tool": "calculate", "answer": "391"}
>>> [result] = evaluate_agent(Agent(ScriptedPolicy(steps), [calculate]), [task])
>>> result.right_tool, result.valid_args, result.correct, failure_kind(result)
(True, True, True, None)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, InvalidOption
from .tools import FINAL, ToolError, validate_arguments

if TYPE_CHECKING:
    from .loop import Agent, AgentRun

__all__ = ["FAILURE_KINDS", "NO_TOOL", "SPLIT_TASKS_FILE", "TASKS_FILE", "TaskResult", "answer_matches", "by_tool", "solved_interval",
           "check_task", "evaluate_agent", "failure_counts", "failure_kind", "load_tasks", "summarize"]

TASKS_FILE = "agent_tasks.jsonl"  # the 30 tasks lesson 10 shows
SPLIT_TASKS_FILE = "agent_task_splits.jsonl"  # generated train / held-out tasks (data/make_agent_tasks.py)
NO_TOOL = "none"  # a task's "tool" when no tool is needed: the right first step is final_answer
FAILURE_KINDS = ("no call", "wrong tool", "bad arguments", "step limit", "wrong final answer")
REQUIRED = frozenset({"id", "question", "tool", "answer"})


def check_task(task: Any, where: str = "task") -> dict[str, Any]:
    """``task`` if it is a well-formed task (``{"id", "question", "tool", "answer"}``), else DataError.

    >>> check_task({"id": 1, "question": "What is 2 + 2?", "tool": "calculate", "answer": 4})["answer"]
    4
    >>> check_task({"id": 1, "question": "", "tool": "calculate", "answer": "4"})
    Traceback (most recent call last):
    ...
    course_utils.errors.DataError: task needs a non-empty text 'question'. Fix: write the question the agent should answer
    """
    if not isinstance(task, Mapping) or not set(task) >= REQUIRED:
        have = sorted(task) if isinstance(task, Mapping) else type(task).__name__
        raise DataError(f"{where} needs the keys {sorted(REQUIRED)}, got {have}", fix='write e.g. {"id": "calc-01", "question": "What is 2 + 2?", "tool": "calculate", "answer": "4"}')
    for key in ("question", "tool"):
        if not isinstance(task[key], str) or not task[key].strip():
            fix = "write the question the agent should answer" if key == "question" else f"name the tool that answers it, or {NO_TOOL!r}"
            raise DataError(f"{where} needs a non-empty text {key!r}", fix=fix)
    answer = task["answer"]
    if isinstance(answer, bool) or not isinstance(answer, str | int | float) or not str(answer).strip():
        raise DataError(f"{where} needs an expected 'answer' (text or a number), got {answer!r:.40}", fix='write e.g. "answer": "391"')
    if isinstance(task["id"], bool) or not isinstance(task["id"], str | int):
        raise DataError(f"{where} needs an 'id' (text or a whole number), got {task['id']!r:.40}", fix='write e.g. "id": "calc-01"')
    return dict(task)


def load_tasks(path: str | None = None, split: str | None = None) -> list[dict[str, Any]]:
    """Agent tasks: ``{"id", "question", "tool", "answer"}`` per line, checked.

    With no arguments, the 30 tasks of lesson 10 (``data/agent_tasks.jsonl``); with ``split``
    (``"train"`` or ``"test"``), that split of the generated tasks (``data/agent_task_splits.jsonl``,
    written by ``data/make_agent_tasks.py``) or of ``path``.

    >>> len(load_tasks()), sorted({t["tool"] for t in load_tasks(split="test")})
    (30, ['calculate', 'none', 'run_python', 'search'])
    """
    from ..datafiles import data_path, read_jsonl

    source = path or data_path(SPLIT_TASKS_FILE if split else TASKS_FILE)
    rows = read_jsonl(source, required=REQUIRED)
    name = Path(source).name
    tasks = [check_task(row, f"{name} line {n}") for n, row in enumerate(rows, 1)]
    if not tasks:
        raise DataError(f"{name} holds no tasks", fix=f"add tasks, one JSON object per line, or restore {source}")
    counts = Counter(str(t["id"]) for t in tasks)
    if twice := sorted(i for i, c in counts.items() if c > 1):
        raise DataError(f"{name} has the task id {twice[0]!r} more than once", fix="give every task its own id")
    if split is not None:
        splits = {t.get("split") for t in tasks}
        if split not in splits:
            raise InvalidOption(f"{name} has no split {split!r} (it has {sorted(map(str, splits))})", fix='use split="train" or split="test"')
        tasks = [t for t in tasks if t.get("split") == split]
    return tasks


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
    """Run ``agent`` on each task and score the first call and the final answer.

    A task whose expected tool the agent does not have is refused before anything runs.
    """
    tasks = [check_task(t, f"task {n}") for n, t in enumerate(tasks, 1)]
    if unknown := sorted({t["tool"] for t in tasks} - {*agent.tools, NO_TOOL}):
        raise InvalidOption(f"the tasks expect the tool {unknown[0]!r}, which the agent does not have (it has {', '.join(agent.tools) or 'none'})",
                            fix=f"give the agent that tool, or mark tasks that need no tool with \"tool\": {NO_TOOL!r}")
    return [_score(agent, task, agent.run(task["question"])) for task in tasks]


def _score(agent: Agent, task: Mapping[str, Any], run: AgentRun) -> TaskResult:
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
    expected_first = FINAL if task["tool"] == NO_TOOL else task["tool"]
    return TaskResult(str(task["id"]), task["tool"], first.tool if parsed else None, parsed, valid,
                      parsed and first.tool == expected_first, answer_matches(run.answer, str(task["answer"])),
                      len(run.steps), run)


def failure_kind(result: TaskResult) -> str | None:
    """Why a task failed (None: it did not), the first that applies of :data:`FAILURE_KINDS`:

    ``no call`` (the first reply was no parseable call), ``wrong tool`` (the first call named
    another tool, or answered at once where a tool was needed), ``bad arguments`` (the right
    tool, but its arguments broke the schema or the tool refused them), ``step limit`` (no answer
    within the steps allowed), ``wrong final answer`` (everything else: an answer, but not the
    expected one).
    """
    if result.correct:
        return None
    if not result.parsed:
        return "no call"
    if not result.right_tool:
        return "wrong tool"
    first = result.run.steps[0]
    if not result.valid_args or (first.tool != FINAL and first.error is not None):
        return "bad arguments"
    if result.run.stopped != "answer":
        return "step limit"
    return "wrong final answer"


def failure_counts(results: Sequence[TaskResult]) -> dict[str, int]:
    """How many tasks failed in each way, ``{kind: count}`` over :data:`FAILURE_KINDS` (and "solved")."""
    kinds = Counter(failure_kind(r) or "solved" for r in results)
    return {kind: kinds.get(kind, 0) for kind in ("solved", *FAILURE_KINDS)}


def summarize(results: Sequence[TaskResult]) -> dict[str, float]:
    """Rates over tasks: parseable first call, right tool, valid arguments, right answer, mean steps."""
    n = len(results)
    if not n:
        raise DataError("no results to summarize", fix="run evaluate_agent on at least one task")
    return {"parseable call": sum(r.parsed for r in results) / n, "right tool": sum(r.right_tool for r in results) / n,
            "valid arguments": sum(r.valid_args for r in results) / n, "right answer": sum(r.correct for r in results) / n,
            "mean steps": sum(r.steps for r in results) / n}


def by_tool(results: Sequence[TaskResult]) -> dict[str, dict[str, float]]:
    """:func:`summarize` per expected tool, plus the number of tasks (``"tasks"``)."""
    tools = sorted({r.expected_tool for r in results})
    return {tool: {"tasks": float(len(group)), **summarize(group)}
            for tool in tools for group in [[r for r in results if r.expected_tool == tool]]}


def solved_interval(results: Sequence[TaskResult], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(rate, low, high)``: the share of tasks with the right final answer and its Wilson confidence interval.

    Wilson's interval (scipy's ``binomtest``) stays inside [0, 1] and keeps its coverage at the small
    task counts a lesson can afford, where "rate ± 2 standard errors" does not.

    >>> from types import SimpleNamespace
    >>> rate, low, high = solved_interval([SimpleNamespace(correct=c) for c in [True] * 15 + [False] * 5])
    >>> rate, round(low, 2), round(high, 2)
    (0.75, 0.53, 0.89)
    """
    from scipy.stats import binomtest

    if not results:
        raise DataError("no results to measure", fix="run evaluate_agent on at least one task")
    if not 0 < confidence < 1:
        raise InvalidOption(f"confidence={confidence!r} must be between 0 and 1", fix="use e.g. confidence=0.95")
    solved = sum(bool(r.correct) for r in results)
    ci = binomtest(solved, len(results)).proportion_ci(confidence_level=confidence, method="wilson")
    return solved / len(results), float(ci.low), float(ci.high)
