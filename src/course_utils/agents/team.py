"""Several agents on one task: a planner picks the tool, a worker runs the ReAct loop, a critic checks the answer.

Taught in lesson 10 (section 5, "Several agents"). Multi-agent frameworks (crewai, AutoGen, LangGraph) give each
*role* its own prompt and let the roles talk. Here each role is one model call through a :class:`~.policies.Policy`,
on the same model, with the same tools and sandbox as the single :class:`~.loop.Agent`:

1. **planner**: reads the question and the tool list and names the tool to use (or ``none``), forced by a grammar
   to one of those names (:func:`plan_schema`);
2. **worker**: the very same loop, its first step restricted to the planned tool (the grammar admits only that
   branch of :func:`~.policies.step_schema`); the prompt is unchanged, so a worker trained on traces sees what it
   was trained on;
3. **critic**: reads the question, what the tool returned and the answer, and says ``accept`` or ``reject``
   (a grammar again). A rejected answer sends the worker once more, this time choosing its tool itself.

Whether the roles help is a measurement, not a given: with one small model in every role, a wrong planner or a
critic that rejects right answers costs as much as it saves.

>>> from .builtin_tools import calculate
>>> from .policies import ScriptedPolicy
>>> worker = Agent(ScriptedPolicy(['{"tool": "calculate", "arguments": {"expression": "6 * 7"}}',
...                                '{"tool": "final_answer", "arguments": {"answer": "42"}}']), [calculate])
>>> team = Team(ScriptedPolicy(['{"tool": "calculate"}']), worker, ScriptedPolicy(['{"verdict": "accept"}']))
>>> run = team.run("What is 6 times 7?")
>>> run.answer, team.last.plan, team.last.verdicts
('42', 'calculate', ['accept'])

The critic reviews every answer; a rejected one sends the worker again (``retries`` times at most).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidOption
from .loop import Agent, AgentRun
from .measuring import NO_TOOL
from .policies import Policy, step_schema
from .tools import FINAL

__all__ = ["CRITIC_PROMPT", "PLANNER_PROMPT", "Team", "TeamRecord", "critic_schema", "plan_schema"]

PLANNER_PROMPT = """You plan the work of an assistant that has these tools:
{tools}
- none: no tool is needed; the assistant answers from what it knows.
Reply with the one tool that answers the question, as JSON: {{"tool": "<name>"}}."""

CRITIC_PROMPT = """You check an assistant's answer. Accept it only if it answers the question and agrees with what the tool returned.
Reply as JSON: {"verdict": "accept"} or {"verdict": "reject"}."""


def plan_schema(tool_names: Sequence[str]) -> dict[str, Any]:
    """The planner's reply: one of the tools' names or ``none``.

    >>> plan_schema(["calculate"])["properties"]["tool"]["enum"]
    ['calculate', 'none']
    """
    return {"type": "object", "properties": {"tool": {"enum": [*tool_names, NO_TOOL]}}, "required": ["tool"]}


def critic_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"verdict": {"enum": ["accept", "reject"]}}, "required": ["verdict"]}


def _field(text: str, key: str, allowed: Sequence[str]) -> str | None:
    """``key``'s value in a JSON reply if it is one of ``allowed``, else None (an unusable reply)."""
    try:
        value = json.loads(text).get(key)
    except (ValueError, AttributeError):
        return None
    return value if value in allowed else None


class _Planned:
    """The worker's policy with its first step restricted to the planned tool (final_answer for ``none``)."""

    def __init__(self, policy: Policy, schema: dict[str, Any]) -> None:
        self.policy, self.schema, self.calls = policy, schema, 0

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        self.calls += 1
        return self.policy(messages, self.schema if self.calls == 1 and schema is not None else schema)


@dataclass
class TeamRecord:
    """What the roles said on the last question: the plan, the critic's verdicts, the worker's runs."""

    plan: str | None = None
    verdicts: list[str] = field(default_factory=list)
    runs: list[AgentRun] = field(default_factory=list)


class Team:
    """planner -> worker -> critic, each role a policy (``(messages, schema) -> text``) on the worker's tools.

    ``run(question)`` returns the worker's accepted (or last) :class:`~.loop.AgentRun`, so
    :func:`~.measuring.evaluate_agent` scores a team exactly like a single agent; ``last`` keeps the plan and
    the verdicts. ``retries``: how often a rejected answer sends the worker again (0 = the critic only watches).
    """

    def __init__(self, planner: Policy, worker: Agent, critic: Policy, retries: int = 1) -> None:
        if not isinstance(worker, Agent):
            raise InvalidOption(f"the worker must be an Agent, got {type(worker).__name__}", fix="pass Agent(policy, tools, ...)")
        if not (callable(planner) and callable(critic)):
            raise InvalidOption("the planner and the critic must be policies: (messages, schema) -> text", fix="pass BackendPolicy(backend) for each")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidOption(f"retries must be a whole number >= 0, got {retries!r}", fix="use retries=1")
        self.planner, self.worker, self.critic, self.retries = planner, worker, critic, retries
        self.tools = worker.tools
        self.planner_prompt = PLANNER_PROMPT.format(tools="\n".join(f"- {t.name}: {t.description}" for t in self.tools.values()))
        self.last = TeamRecord()

    def plan(self, question: str) -> str | None:
        reply = self.planner([{"role": "system", "content": self.planner_prompt}, {"role": "user", "content": question}],
                             plan_schema(list(self.tools)))
        return _field(reply, "tool", [*self.tools, NO_TOOL])

    def review(self, question: str, run: AgentRun) -> str:
        results = "; ".join(s.observation or s.error or "" for s in run.steps if s.tool != FINAL) or "(no tool was used)"
        text = f"Question: {question}\nTool result: {results[:400]}\nAnswer: {run.answer}"
        reply = self.critic([{"role": "system", "content": CRITIC_PROMPT}, {"role": "user", "content": text}], critic_schema())
        return _field(reply, "verdict", ["accept", "reject"]) or "reject"

    def _work(self, question: str, plan: str | None) -> AgentRun:
        policy = self.worker.policy
        if plan is not None:
            tools = [] if plan == NO_TOOL else [self.tools[plan]]
            thought = "thought" in self.worker.schema["anyOf"][0]["properties"]
            self.worker.policy = _Planned(policy, step_schema(tools, thought=thought))
        try:
            return self.worker.run(question)
        finally:
            self.worker.policy = policy

    def run(self, question: str) -> AgentRun:
        """Plan, work, review; a rejected answer (or none) sends the worker again, choosing its own tool."""
        self.last = record = TeamRecord(plan=self.plan(question))
        run = self._work(question, record.plan)
        record.runs.append(run)
        for attempt in range(self.retries + 1):
            verdict = self.review(question, run) if run.answer is not None else "reject"
            record.verdicts.append(verdict)
            if verdict == "accept" or attempt == self.retries:
                return run
            run = self._work(question, None)
            record.runs.append(run)
        return run
