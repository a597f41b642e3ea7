"""The ReAct loop: ask the policy for a step, run the tool, show the model the result, repeat.

Taught in lesson 10 (section 4). At most ``max_steps`` model calls. Every problem (text that is
not JSON, an unknown tool, bad arguments, a tool that raises, the step limit) becomes an ``error``
line in the trace and an observation the model can react to: the loop never raises because of what
the model wrote, and never runs forever.

>>> from .builtin_tools import calculate
>>> from .policies import ScriptedPolicy
>>> steps = ['{"tool": "calculate", "arguments": {"expression": "17 * 23"}}',
...          '{"tool": "final_answer", "arguments": {"answer": "391"}}']
>>> print(Agent(ScriptedPolicy(steps), [calculate]).run("What is 17 times 23?").show())
Question: What is 17 times 23?
  1. action:      calculate({"expression": "17 * 23"})
  1. observation: 391
  2. action:      final_answer({"answer": "391"})
Answer: 391
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import CourseError, InvalidOption
from .policies import BackendPolicy, Policy, ToolCall, parse_step, step_schema
from .tools import FINAL, Tool, ToolError, make_tool

if TYPE_CHECKING:
    from ..backends.base import Backend

__all__ = ["SYSTEM_PROMPT", "Agent", "AgentRun", "Step", "describe_tools"]

SYSTEM_PROMPT = """You are an assistant that uses tools. Tools:
{tools}
- final_answer(answer): give the answer to the user.
Reply with one JSON object only: {{"thought": "<why>", "tool": "<a tool name>", "arguments": {{<its arguments>}}}}.
Use a tool first, read its result, then reply with the final_answer tool."""


def describe_tools(tools: Sequence[Tool]) -> str:
    """One line per tool: ``- name(arg: type): description``.

    >>> from .builtin_tools import calculate
    >>> describe_tools([make_tool(calculate)])
    '- calculate(expression: string): Evaluate an arithmetic expression with + - * / // % ** and parentheses.'
    """
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
                lines.append(f"  {s.index}. action:      {s.tool}({cut(json.dumps(s.arguments, ensure_ascii=False, default=repr))})")
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


def _observation(result: Any) -> str:
    """A tool's result as the text the model reads (JSON for data; repr for what JSON cannot hold)."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict | list | tuple):
        return json.dumps(result, ensure_ascii=False, default=repr)
    return str(result)


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
        from ..backends.base import Backend

        self.policy = BackendPolicy(policy) if isinstance(policy, Backend) else policy
        if not callable(self.policy):
            raise InvalidOption(f"the policy must be a backend or a function (messages, schema) -> text, got {type(policy).__name__} {policy!r:.30}",
                                fix='pass get_backend("auto"), BackendPolicy(backend) or ScriptedPolicy([...])')
        self.tools = _tool_table(tools)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise InvalidOption(f"max_steps must be a positive whole number, got {max_steps!r}", fix="use e.g. max_steps=4")
        if not isinstance(system_prompt, str) or "{tools}" not in system_prompt:
            raise InvalidOption("the system prompt must be text with a {tools} slot for the tool list", fix="start from agents.SYSTEM_PROMPT")
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
        return _observation(result)

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
            step = self._step(index, raw, messages)
            steps.append(step)
            if step.tool == FINAL and step.error is None:
                return AgentRun(question, steps, str(step.arguments["answer"]).strip(), "answer", messages)
        return AgentRun(question, steps, None, "step_limit", messages)

    def _step(self, index: int, raw: Any, messages: list[dict[str, str]]) -> Step:
        """Parse one reply, run its call, and append what the model should read next to ``messages``."""
        text = raw if isinstance(raw, str) else repr(raw)
        messages.append({"role": "assistant", "content": text})
        try:
            call = parse_step(raw)
        except ToolError as err:
            messages.append({"role": "user", "content": f"Error: {err}"})
            return Step(index, text, error=str(err))
        if call.tool == FINAL:
            answer = call.arguments.get("answer")
            if isinstance(answer, str | int | float) and not isinstance(answer, bool) and str(answer).strip():
                return Step(index, text, call.thought, FINAL, call.arguments)
            err = ToolError("final_answer needs a non-empty 'answer'", fix='send {"tool": "final_answer", "arguments": {"answer": "..."}}')
            messages.append({"role": "user", "content": f"Error: {err}"})
            return Step(index, text, call.thought, FINAL, call.arguments, error=str(err))
        try:
            observation = self.call_tool(call)
        except ToolError as err:
            messages.append({"role": "user", "content": f"Error: {err}"})
            return Step(index, text, call.thought, call.tool, call.arguments, error=str(err))
        messages.append({"role": "user", "content": f"Result of {call.tool}: {observation}\nNow answer the question with final_answer."})
        return Step(index, text, call.thought, call.tool, call.arguments, observation=observation)


def _tool_table(tools: Sequence[Tool | Callable[..., Any]]) -> dict[str, Tool]:
    """``{name: Tool}`` from a list of tools or functions; clashing or reserved names are refused."""
    if isinstance(tools, Tool) or callable(tools) or isinstance(tools, str | bytes) or not hasattr(tools, "__iter__"):
        raise InvalidOption(f"tools must be a list of tools or functions, got {type(tools).__name__}", fix="pass e.g. [calculate] or [make_tool(calculate), search]")
    table: dict[str, Tool] = {}
    for tool in (make_tool(x) for x in tools):
        if tool.name == FINAL:
            raise InvalidOption(f"{FINAL!r} is reserved for the agent's answer", fix="give your tool another name")
        if tool.name in table:
            raise InvalidOption(f"two tools are called {tool.name!r}: the model could not tell them apart", fix="give each tool its own name (make_tool(fn, name=...))")
        table[tool.name] = tool
    return table
