"""planner -> worker -> critic (lesson 10): the plan restricts the worker's first step, a rejection sends it again."""

from __future__ import annotations

import pytest

from course_utils import agents
from course_utils.errors import InvalidOption

CALL = '{"tool": "calculate", "arguments": {"expression": "6 * 7"}}'
ANSWER = '{"tool": "final_answer", "arguments": {"answer": "42"}}'


class Recording(agents.ScriptedPolicy):
    """A scripted policy that also keeps the schema of every call."""

    def __init__(self, replies):
        super().__init__(replies)
        self.schemas = []

    def __call__(self, messages, schema):
        self.schemas.append(schema)
        return super().__call__(messages, schema)


def _branches(schema):
    return [b["properties"]["tool"]["const"] for b in schema["anyOf"]]


def test_the_plan_restricts_only_the_first_step_and_the_prompt_is_unchanged():
    policy = Recording([CALL, ANSWER])
    worker = agents.Agent(policy, [agents.calculate, agents.make_python_tool()], max_steps=2)
    team = agents.Team(agents.ScriptedPolicy(['{"tool": "calculate"}']), worker, agents.ScriptedPolicy(['{"verdict": "accept"}']))
    run = team.run("What is 6 times 7?")
    assert run.answer == "42" and team.last.plan == "calculate" and team.last.verdicts == ["accept"]
    assert _branches(policy.schemas[0]) == ["calculate", "final_answer"]  # run_python is not offered on step 1
    assert policy.schemas[1] == worker.final_schema  # the loop's own last-step schema, untouched
    assert worker.policy is policy  # the worker is left as it was


def test_a_plan_of_none_admits_only_the_final_answer():
    policy = Recording([ANSWER])
    worker = agents.Agent(policy, [agents.calculate], max_steps=2)
    agents.Team(agents.ScriptedPolicy(['{"tool": "none"}']), worker, agents.ScriptedPolicy(['{"verdict": "accept"}'])).run("6 * 7?")
    assert _branches(policy.schemas[0]) == ["final_answer"]


def test_a_rejected_answer_sends_the_worker_again_choosing_its_own_tool():
    policy = Recording([CALL, '{"tool": "final_answer", "arguments": {"answer": "41"}}', CALL, ANSWER])
    worker = agents.Agent(policy, [agents.calculate], max_steps=2)
    critic = agents.ScriptedPolicy(['{"verdict": "reject"}', '{"verdict": "accept"}'])
    team = agents.Team(agents.ScriptedPolicy(['{"tool": "none"}']), worker, critic, retries=1)
    run = team.run("What is 6 times 7?")
    assert [r.answer for r in team.last.runs] == ["41", "42"] and run.answer == "42"
    assert team.last.verdicts == ["reject", "accept"]
    assert policy.schemas[2] == worker.schema  # the second round is unrestricted


def test_a_team_is_scored_like_a_single_agent():
    worker = agents.Agent(agents.ScriptedPolicy([CALL, '{"tool": "final_answer", "arguments": {"answer": "41"}}']), [agents.calculate], max_steps=2)
    team = agents.Team(agents.ScriptedPolicy(['{"tool": "calculate"}']), worker, agents.ScriptedPolicy(['{"verdict": "accept"}']))
    [result] = agents.evaluate_agent(team, [{"id": "t", "question": "What is 6 times 7?", "tool": "calculate", "answer": "42"}])
    assert result.right_tool and not result.correct and agents.failure_kind(result) == "wrong final answer"


def test_an_unusable_plan_or_verdict_falls_back_safely():
    worker = agents.Agent(agents.ScriptedPolicy([CALL, ANSWER]), [agents.calculate], max_steps=2)
    team = agents.Team(agents.ScriptedPolicy(["not json"]), worker, agents.ScriptedPolicy(['{"verdict": "maybe"}']), retries=0)
    run = team.run("What is 6 times 7?")
    assert team.last.plan is None and run.answer == "42"  # no plan: the worker chose itself
    assert team.last.verdicts == ["reject"]  # an unreadable verdict counts as a rejection; retries=0 keeps the answer


def test_bad_roles_are_refused():
    worker = agents.Agent(agents.ScriptedPolicy([ANSWER]), [agents.calculate])
    with pytest.raises(InvalidOption, match="worker must be an Agent"):
        agents.Team(agents.ScriptedPolicy(["{}"]), "worker", agents.ScriptedPolicy(["{}"]))
    with pytest.raises(InvalidOption, match="retries"):
        agents.Team(agents.ScriptedPolicy(["{}"]), worker, agents.ScriptedPolicy(["{}"]), retries=-1)
